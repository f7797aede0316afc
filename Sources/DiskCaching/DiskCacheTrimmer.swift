import CSystem
import FoundationEssentials
import Glibc

/// Keeps a disk cache under its byte budget, least recently used first, in
/// the manner of the Go build cache: a hit refreshes a file's time at most
/// once an hour, and a trim runs at most once per `interval` across every
/// process sharing the directory (a stamp file says when the last one ran),
/// under an exclusive `flock` nobody waits for: a process that finds it
/// taken skips the trim. Requests never wait for a trim.
struct DiskCacheTrimmer: Sendable {
    /// What one trim did.
    struct Outcome: Sendable, Equatable {
        /// Content files removed to get under the budget.
        var evicted = 0
        /// Bytes of content left.
        var bytes = 0
    }

    /// How often the directory is trimmed at most.
    static let interval: Double = 300
    /// Tables of older formats, removed by a trim.
    static let legacyTables = ["ocirpc/v1"]
    /// Temporary files older than this were left by a process that died mid-write.
    static let maxTemporaryAge: Double = 3_600
    /// A hit refreshes its file's time when the time is older than this.
    static let touchInterval: Double = 3_600

    let root: String
    let tables: String
    /// Bytes of content kept; a trim goes down to 90% of it.
    let budget: Int

    /// Trims if no process has in the last `interval`; nil when not due or
    /// another process holds the lock.
    func trimIfDue(now: Double) -> Outcome? {
        withLock {
            var status = stat()
            if stat(tables + "/last-trim", &status) == 0, Double(status.st_mtim.tv_sec) > now - Self.interval {
                return nil
            }
            return trimLocked(now: now)
        }
    }

    /// Trims now (still under the lock, so never two at once).
    func trim(now: Double) -> Outcome? {
        withLock { trimLocked(now: now) }
    }

    private func withLock(_ body: () -> Outcome?) -> Outcome? {
        let fd = open(tables + "/trim.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        defer { flock(fd, LOCK_UN) }
        return body()
    }

    /// Where content is kept, the files a trim counts and removes.
    private var contentDirectories: [String] {
        [root + "/blobs/sha256", root + "/blobs/sha512", tables + "/journals", tables + "/derived"]
    }

    /// Calls `body` with the path, size and time of every content file.
    private func forEachContentFile(_ body: (String, Int, Double) -> Void) {
        for directory in contentDirectories {
            Self.forEachEntry(in: directory) { name, status in
                guard (status.st_mode & S_IFMT) == S_IFREG else { return }
                body(directory + "/" + name, Int(status.st_size), Self.seconds(status.st_mtim))
            }
        }
    }

    /// The buckets a trim sorts content into by time: the memory a trim
    /// needs is theirs, whatever the number of files.
    static let timeBuckets = 4096

    private func trimLocked(now: Double) -> Outcome {
        var outcome = Outcome()
        // Content, least recently used first, until under 90% of the budget.
        // Nothing is listed in memory: one pass sums the sizes; only when
        // over budget, a second sorts sizes into time buckets and a third
        // removes every file of the oldest buckets that must go.
        var total = 0
        var oldest = Double.infinity
        var newest = -Double.infinity
        forEachContentFile { _, size, time in
            total += size
            oldest = min(oldest, time)
            newest = max(newest, time)
        }
        if total > budget {
            let toFree = total - budget / 10 * 9
            let width = max((newest - oldest) / Double(Self.timeBuckets), 1e-6)
            func bucket(_ time: Double) -> Int { min(Self.timeBuckets - 1, max(0, Int((time - oldest) / width))) }
            var sizes = [Int](repeating: 0, count: Self.timeBuckets)
            forEachContentFile { _, size, time in sizes[bucket(time)] += size }
            // Every file of the buckets before `last` goes, and of `last`
            // only as many bytes as are still needed (files of one time
            // cannot be told apart by use).
            var last = Self.timeBuckets - 1
            var older = 0
            for index in sizes.indices {
                if older + sizes[index] >= toFree {
                    last = index
                    break
                }
                older += sizes[index]
            }
            let neededFromLast = toFree - older
            var freedFromLast = 0
            forEachContentFile { path, size, time in
                let index = bucket(time)
                guard index < last || (index == last && freedFromLast < neededFromLast), unlink(path) == 0 else {
                    return
                }
                if index == last { freedFromLast += size }
                total -= size
                outcome.evicted += 1
            }
        }
        outcome.bytes = total
        // Temporary files of processes that died mid-write; the tables of
        // an older format, never read again.
        removeOlder(than: now - Self.maxTemporaryAge, in: tables + "/tmp")
        for legacy in Self.legacyTables { try? FileManager.default.removeItem(atPath: root + "/" + legacy) }
        let stamp = open(tables + "/last-trim", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        if stamp >= 0 {
            futimens(stamp, nil)
            close(stamp)
        }
        return outcome
    }

    private func removeOlder(than limit: Double, in directory: String) {
        Self.forEachEntry(in: directory) { name, status in
            if Self.seconds(status.st_mtim) < limit { unlink(directory + "/" + name) }
        }
    }

    /// Calls `body` with the name and status (not following links) of each
    /// entry of `directory` but `.` and `..`, one at a time.
    static func forEachEntry(in directory: String, _ body: (String, stat) -> Void) {
        guard let stream = opendir(directory) else { return }
        defer { closedir(stream) }
        let fd = dirfd(stream)
        while let cName = ocirpc_next_entry_name(stream) {
            let name = String(cString: cName)
            if name == "." || name == ".." { continue }
            var status = stat()
            guard fstatat(fd, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            body(name, status)
        }
    }

    static func seconds(_ time: timespec) -> Double { Double(time.tv_sec) + Double(time.tv_nsec) / 1e9 }
}
