import Foundation
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
    /// A tag answer older than the longest tag TTL (`--tag-ttl` at most 30 days) is never used again.
    static let maxTagAge: Double = 30 * 86_400
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

    private func trimLocked(now: Double) -> Outcome {
        var outcome = Outcome()
        // Content, oldest first, until under 90% of the budget.
        var files: [(path: String, size: Int, time: Double)] = []
        for directory in [root + "/blobs/sha256", root + "/blobs/sha512", tables + "/derived"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                var status = stat()
                let path = directory + "/" + name
                guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { continue }
                files.append((path, Int(status.st_size), Self.seconds(status.st_mtim)))
            }
        }
        var total = files.reduce(0) { $0 + $1.size }
        if total > budget {
            let target = budget / 10 * 9
            for file in files.sorted(by: { $0.time < $1.time }) where total > target {
                if unlink(file.path) == 0 {
                    total -= file.size
                    outcome.evicted += 1
                }
            }
        }
        outcome.bytes = total
        // Provenance of content no longer here; tags too old for any TTL;
        // temporary files of processes that died mid-write.
        let repositories = tables + "/repositories"
        for repository in (try? FileManager.default.contentsOfDirectory(atPath: repositories)) ?? [] {
            let directory = repositories + "/" + repository
            var left = 0
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
                // "<alg>-<hex>", or "<alg>-<hex>.blob" for a blob.
                let content =
                    entry.hasSuffix(DiskCache.blobProvenanceSuffix)
                    ? entry.dropLast(DiskCache.blobProvenanceSuffix.count) : Substring(entry)
                let parts = content.split(separator: "-", maxSplits: 1)
                if parts.count == 2, access(root + "/blobs/\(parts[0])/\(parts[1])", F_OK) != 0 {
                    unlink(directory + "/" + entry)
                } else {
                    left += 1
                }
            }
            if left == 0 { rmdir(directory) }
        }
        removeOlder(than: now - Self.maxTagAge, in: tables + "/tags")
        removeOlder(than: now - Self.maxTemporaryAge, in: tables + "/tmp")
        let stamp = open(tables + "/last-trim", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        if stamp >= 0 {
            futimens(stamp, nil)
            close(stamp)
        }
        return outcome
    }

    private func removeOlder(than limit: Double, in directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var status = stat()
            let path = directory + "/" + name
            if lstat(path, &status) == 0, Self.seconds(status.st_mtim) < limit { unlink(path) }
        }
    }

    static func seconds(_ time: timespec) -> Double { Double(time.tv_sec) + Double(time.tv_nsec) / 1e9 }
}
