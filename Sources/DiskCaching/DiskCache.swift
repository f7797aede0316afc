import CSystem
import Dispatch
import FoundationEssentials
import Glibc
import Locking
import Logging
import Registry
import Tally

/// Content kept on disk across processes: what each repository was seen to
/// hold (manifests with their bytes, blobs) and what its tags named when
/// fetched, blobs by digest, and derived results. Any number of processes
/// share one directory: what a repository holds is appended to its
/// journal, one record per write; any other file is written new and renamed
/// into place; and every read is checked (a manifest or blob against its
/// digest, a record against its checksum and format), so a torn or
/// tampered file is deleted and counts as a miss.
///
/// The layout: blobs as in an OCI image layout (`oci-layout`,
/// `blobs/sha256/<hex>`), and ocirpc's own tables beside them under
/// `ocirpc/v2/`: `journals/<hash of registry/repository>` (see
/// `JournalRecord`), `derived/` and `tmp/`. Appending a record costs a
/// fraction of creating a file, which is what a cold tag used to cost three
/// times over.
///
/// A disk that fails never fails a request: the first failure is logged
/// once, and every call goes on as a miss (or a write not made).
public final class DiskCache: Sendable {
    /// Counts for `server.stats`.
    public struct Statistics: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        /// Files written and journal appends made.
        public var writes = 0
        /// Files and journals found damaged (wrong digest or checksum,
        /// malformed, not a regular file) and deleted.
        public var corrupt = 0
        /// Reads or writes the disk refused.
        public var failures = 0
        /// Blobs, journals and derived results removed to keep under the budget
        /// (by this process's trims).
        public var evictions = 0
        /// Bytes of content on disk at the last trim (by this process).
        public var bytes = 0
        /// Journals at their limit written anew with what they still say.
        public var compactions = 0

        public init() {}
    }

    /// The tables' format: a directory of its own per version.
    static let tablesDirectory = "ocirpc/v2"
    /// The default budget for content on disk.
    public static let defaultBudget = 2 << 30

    public let root: URL
    private let rootPath: String
    let tables: String
    let temporary: String
    private let logger: Logger
    /// The user the directory must belong to (`PrivateDirectory`).
    private let owner: PrivateDirectory.User
    private let counts = Locked(Statistics())
    private let warned = Locked(false)
    private let trimmer: DiskCacheTrimmer
    /// The journals of the repositories this process asked about.
    private let journals = Locked<[String: Journal]>([:])
    /// `ocirpc/v2/fetch.lock`, open for the cache's life (its locks are
    /// this open file's); nil when it could not be opened.
    private let fetchLock = Locked<Int32?>(nil)
    var fetchLockFile: Int32? { fetchLock.withLock { $0 } }
    /// Journal files kept open for reading (`OpenJournalFile`), counted.
    let openJournalFiles = Locked(0)
    /// How long (nanoseconds) a journal file kept open is read before its
    /// path is opened again.
    let journalRecheckInterval: UInt64
    /// The default of `journalRecheckInterval`: one second.
    static let defaultJournalRecheckInterval: UInt64 = 1_000_000_000
    /// When this process last asked whether a trim was due.
    private let lastTrimCheck = Locked(-Double.infinity)
    private static let trimQueue = DispatchQueue(label: "ocirpc.disk-cache-trim", qos: .utility)

    /// The cache in `directory`, created if needed, keeping at most about
    /// `budget` bytes of content; nil (after one warning) when it cannot be
    /// used at all. A trim starts in the background if one is due.
    public static func open(directory: String, budget: Int = defaultBudget, logger: Logger) -> DiskCache? {
        open(
            directory: directory, budget: budget, logger: logger, journalRecheckInterval: defaultJournalRecheckInterval)
    }

    /// `open`, with journal files kept open for reading trusted for
    /// `journalRecheckInterval` nanoseconds (tests shorten or lengthen it),
    /// and the directory required to be `owner`'s own.
    static func open(
        directory: String, budget: Int = defaultBudget, logger: Logger, journalRecheckInterval: UInt64,
        owner: PrivateDirectory.User = .current
    ) -> DiskCache? {
        let cache = DiskCache(
            root: URL(fileURLWithPath: directory), budget: budget, logger: logger,
            journalRecheckInterval: journalRecheckInterval, owner: owner)
        do {
            try cache.prepare()
            cache.trimSoonIfDue()
            return cache
        } catch {
            logger.warn(
                "disk cache unavailable; going on with memory only", [("directory", directory), ("error", "\(error)")])
            return nil
        }
    }

    deinit {
        if let fd = fetchLockFile { close(fd) }
    }

    private init(
        root: URL, budget: Int, logger: Logger, journalRecheckInterval: UInt64, owner: PrivateDirectory.User
    ) {
        self.root = root
        self.owner = owner
        self.journalRecheckInterval = journalRecheckInterval
        self.rootPath = root.path
        self.tables = root.appendingPathComponent(Self.tablesDirectory).path
        self.temporary = root.appendingPathComponent(Self.tablesDirectory + "/tmp").path
        self.logger = logger
        self.trimmer = DiskCacheTrimmer(root: root.path, tables: tables, budget: budget)
    }

    /// Trims now, waiting for it (tests; requests never call this).
    @discardableResult
    public func trimNow() -> Bool {
        guard let outcome = trimmer.trim(now: Self.now()) else { return false }
        record(outcome)
        return true
    }

    /// Starts a trim in the background when none has run lately, checking
    /// at most once per trim interval in this process.
    func trimSoonIfDue() {
        let now = Self.now()
        let due = lastTrimCheck.withLock { last in
            guard now - last >= DiskCacheTrimmer.interval else { return false }
            last = now
            return true
        }
        guard due else { return }
        Self.trimQueue.async { [self] in
            if let outcome = trimmer.trimIfDue(now: now) { record(outcome) }
        }
    }

    private func record(_ outcome: DiskCacheTrimmer.Outcome) {
        count {
            $0.evictions += outcome.evicted
            $0.bytes = outcome.bytes
        }
        if outcome.evicted > 0 {
            logger.debug(
                "disk cache trimmed", [("evicted", String(outcome.evicted)), ("bytes", String(outcome.bytes))])
        }
    }

    /// The directories under the root that the cache makes (with those
    /// above them).
    static let madeDirectories = [
        "blobs/sha256", "blobs/sha512", tablesDirectory + "/journals", tablesDirectory + "/derived",
        tablesDirectory + "/tmp",
    ]
    /// The directories under the root that the cache writes in.
    static let ownDirectories = ["blobs", "ocirpc", tablesDirectory] + madeDirectories

    private func prepare() throws {
        // Another user who can change these could plant answers in them,
        // or links that lead the directories made below elsewhere.
        if let problem = PrivateDirectory.problemMaking(rootPath, user: owner) {
            throw DiskCacheError("not this user's own: \(problem)")
        }
        let manager = FileManager.default
        for path in Self.madeDirectories { try Self.makeDirectories(rootPath + "/" + path) }
        if let problem = PrivateDirectory.problem(rootPath, inside: Self.ownDirectories, user: owner) {
            throw DiskCacheError("not this user's own: \(problem)")
        }
        let layout = root.appendingPathComponent("oci-layout").path
        if !manager.fileExists(atPath: layout) {
            write(Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: layout)
        }
        guard access(temporary, W_OK) == 0 else { throw DiskCacheError("\(temporary) is not writable") }
        let lockFile = Glibc.open(tables + "/fetch.lock", O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if lockFile >= 0 { fetchLock.withLock { $0 = lockFile } }
    }

    public var statistics: Statistics { counts.withLock { $0 } }

    // MARK: - Manifests

    /// The journal of `repository` (`registry/repository`).
    func journal(_ repository: String) -> Journal {
        journals.withLock { journals in
            if let known = journals[repository] { return known }
            if journals.count >= Self.maxJournalsInMemory { journals.remove(at: journals.startIndex) }
            let journal = Journal(path: journalPath(repository))
            journals[repository] = journal
            return journal
        }
    }

    /// The manifest `digest` names, if `repository` (`registry/repository`)
    /// was seen to hold it and the stored bytes still hash to `digest`.
    public func manifest(_ digest: Digest, repository: String) -> FetchedManifest? {
        let journal = journal(repository)
        // Twice at most: the journal may be replaced between finding the
        // entry and reading its bytes.
        for _ in 0..<2 {
            guard let (entry, file) = lookUp(journal, { $0.manifests[digest] }) else { break }
            guard let bytes = readBody(entry.body, of: journal, file: file) else {
                // Replaced, gone, or not a file of ours: read it again.
                journal.index.withLock { refresh(&$0, journal.path) }
                continue
            }
            guard Digest.of(bytes, algorithm: digest.algorithm) == digest else {
                journal.index.withLock { index in
                    if index.file == file { discardDamaged(&index, journal.path) }
                }
                count { $0.misses += 1 }
                return nil
            }
            count { $0.hits += 1 }
            return FetchedManifest(bytes: bytes, mediaType: entry.mediaType, digest: digest)
        }
        count { $0.misses += 1 }
        return nil
    }

    /// Keeps `manifest` (verified by whoever fetched it) as held by
    /// `repository`, unless its journal has it already.
    public func storeManifest(_ manifest: FetchedManifest, repository: String) {
        storeManifest(manifest, repository: repository, tag: nil)
    }

    /// Keeps `manifest` and, for a tag reference, that it names it now: one
    /// append (the manifest left out when the journal has it already),
    /// made before the answer goes out, and before the fetch lock is
    /// released: an append costs a few microseconds, less than handing it
    /// to another thread would.
    public func storeManifest(_ manifest: FetchedManifest, repository: String, tag tagReference: String?) {
        var mediaType = manifest.mediaType
        guard mediaType.withUTF8({ Self.isMediaType($0) }) else { return }
        let tagReference = tagReference.flatMap { Self.isTagReference($0) ? $0 : nil }
        append(to: journal(repository)) { index in
            var records = JournalRecord.Appending()
            // A tag fetched again after its TTL mostly names what is there.
            if index.manifests[manifest.digest] == nil { records.manifest(manifest) }
            if let tagReference { records.tag(tagReference, manifest.digest, fetchedAt: Self.now()) }
            return records
        }
    }

    /// `type/subtype[+suffix]` in printable ASCII without spaces: what a
    /// registry's Content-Type may name, and nothing a damaged file holds.
    static func isMediaType(_ text: some Collection<UInt8>) -> Bool {
        guard text.count <= 255 else { return false }
        var slash = false
        for byte in text {
            guard byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: ";") else { return false }
            if byte == UInt8(ascii: "/") { slash = true }
        }
        return slash
    }

    /// A tag reference a record can hold: one line, of a sane length.
    static func isTagReference(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { !$0.isEmpty && $0.count <= 4096 && !$0.contains(0x0A) }
    }

    // MARK: - Tags

    /// The digest `tagReference` (a tag of `repository`) named when fetched
    /// less than `maxAge` seconds ago (by this process or another).
    public func tag(_ tagReference: String, repository: String, maxAge: Double) -> Digest? {
        let now = Self.now()
        guard maxAge > 0,
            let (tag, _) = lookUp(
                journal(repository),
                { index in
                    index.tags[tagReference].flatMap { tag in
                        let age = now - tag.fetchedAt
                        return age >= 0 && age < maxAge ? tag : nil
                    }
                })
        else {
            count { $0.misses += 1 }
            return nil
        }
        count { $0.hits += 1 }
        return tag.digest
    }

    /// Keeps that `tagReference` (a tag of `repository`) names `digest` as of now.
    public func storeTag(_ digest: Digest, for tagReference: String, repository: String) {
        guard Self.isTagReference(tagReference) else { return }
        var records = JournalRecord.Appending()
        records.tag(tagReference, digest, fetchedAt: Self.now())
        append(records, to: journal(repository))
    }

    // MARK: - Files

    func contentPath(_ digest: Digest) -> String {
        rootPath + "/blobs/\(digest.algorithm.rawValue)/\(digest.hex)"
    }

    /// The file's bytes, nil when missing, unreadable or over `limit`.
    /// With `touch`, the file is marked as used now when its time is over
    /// an hour old (what the trim orders by).
    func read(_ path: String, limit: Int, touch: Bool = false) -> [UInt8]? {
        // Never a link's target, and never waiting on a FIFO: only a
        // regular file of the cache's own is read; anything else is deleted.
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ELOOP { return notOurs(path) }
            if errno != ENOENT { failed("read \(path)", errno) }
            return nil
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            failed("read \(path)", errno)
            return nil
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { return notOurs(path) }
        if touch, DiskCacheTrimmer.seconds(status.st_mtim) < Self.now() - DiskCacheTrimmer.touchInterval {
            futimens(fd, nil)
        }
        // Larger than anything written here: not ours.
        guard Int(status.st_size) <= limit else { return notOurs(path) }
        switch WholeFile.read(fd, size: Int(status.st_size)) {
        case .bytes(let bytes): return bytes
        // Grown since fstat (appended to in place: not ours).
        case .grew: return notOurs(path)
        case .failed(let code):
            failed("read \(path)", code)
            return nil
        }
    }

    /// Writes `bytes` to a new file and renames it to `path`; false (the
    /// failure counted, and logged once) when the disk refuses.
    @discardableResult
    func write(_ bytes: [UInt8], to path: String) -> Bool {
        writeNew(bytes, to: path) != nil
    }

    /// `write`, returning what the file written was (its status, taken
    /// before it was renamed into place); nil when it was not written.
    func writeNew(_ bytes: [UInt8], to path: String) -> stat? {
        // Close-on-exec from the start: a credential helper spawned meanwhile
        // must not inherit it.
        var template = Array((temporary + "/write-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { ocirpc_mkstemp_cloexec($0.baseAddress!) }
        guard fd >= 0 else {
            failed("create a file in \(temporary)", errno)
            return nil
        }
        let temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var offset = 0
        var ok = true
        var status = stat()
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    ok = false
                    return
                }
                offset += n
            }
        }
        if ok { ok = fstat(fd, &status) == 0 }
        let error = errno
        close(fd)
        if ok {
            ok = rename(temporaryPath, path) == 0
            // A repository's first entry: its directory is made then.
            if !ok && errno == ENOENT, let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) {
                mkdir(String(path[..<slash]), 0o700)
                ok = rename(temporaryPath, path) == 0
            }
        }
        guard ok else {
            failed("write \(path)", ok ? errno : error)
            unlink(temporaryPath)
            return nil
        }
        count { $0.writes += 1 }
        trimSoonIfDue()
        return status
    }

    func failed(_ what: String, _ code: Int32) {
        failed(what, error: String(cString: strerror(code)))
    }

    func failed(_ what: String, error: String) {
        count { $0.failures += 1 }
        let first = warned.withLock { warned in
            defer { warned = true }
            return !warned
        }
        if first {
            logger.warn(
                "disk cache failing; going on with memory",
                [("operation", what), ("error", error)])
        }
    }

    /// Deletes what is at `path` when it is not a file the cache wrote as
    /// written (a link, a FIFO, a directory, a size it never writes),
    /// counted as corrupt; nil (the caller counts the miss).
    func notOurs<T>(_ path: String) -> T? {
        if unlink(path) != 0 { rmdir(path) }
        count { $0.corrupt += 1 }
        return nil
    }

    /// Deletes a file found damaged and counts it (a miss, and corrupt);
    /// nil, for the lookup to return.
    func missDamaged<T>(_ path: String) -> T? {
        count { $0.misses += 1 }
        return notOurs(path)
    }

    /// Updates the counts; a change of hits or misses is also a lookup of
    /// the current request's.
    func count(_ update: (inout Statistics) -> Void) {
        let (hits, misses) = counts.withLock { counts -> (Int, Int) in
            let before = (counts.hits, counts.misses)
            update(&counts)
            return (counts.hits - before.0, counts.misses - before.1)
        }
        if hits > 0 { RequestTally.lookup(hit: true) }
        if misses > 0 { RequestTally.lookup(hit: false) }
    }

    /// A coarse monotonic clock (nanoseconds): cheap, for intervals.
    static func monotonicNow() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

extension DiskCache {
    /// Makes `path` and the directories above it that are missing, each
    /// `0700`; the error names the one that could not be made and why.
    static func makeDirectories(_ path: String) throws(DiskCacheError) {
        var made = path.hasPrefix("/") ? "" : "."
        for name in path.split(separator: "/", omittingEmptySubsequences: true) {
            made += "/" + name
            if mkdir(made, 0o700) != 0 && errno != EEXIST {
                throw DiskCacheError("cannot make \(made): \(String(cString: strerror(errno)))")
            }
        }
    }
}

struct DiskCacheError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
