import Dispatch
import Foundation
import Glibc
import Locking
import Logging
import Registry
import Testing

@testable import DiskCaching

@Suite struct DiskCacheTests {
    let directory: String
    let cache: DiskCache

    init() throws {
        directory = try stampedCacheDirectory(temporaryCachePath())
        cache = try #require(DiskCache.open(directory: directory, logger: .disabled))
    }

    private func manifest(_ text: String = #"{"schemaVersion":2,"layers":[]}"#) -> FetchedManifest {
        FetchedManifest(bytes: Array(text.utf8), mediaType: ManifestMediaType.ociManifest)
    }

    private func files(under path: String, in root: String? = nil) -> [String] {
        let directory = root ?? self.directory
        return (FileManager.default.enumerator(atPath: directory + "/" + path)?.allObjects as? [String] ?? [])
            .filter { !$0.hasSuffix("/") && !(($0 as NSString).lastPathComponent.isEmpty) }
            .filter {
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: directory + "/" + path + "/" + $0, isDirectory: &isDirectory)
                return !isDirectory.boolValue
            }
    }

    @Test func aStoredManifestIsReadBackByAnotherInstance() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let read = try #require(other.manifest(stored.digest, repository: "r.test/app"))
        #expect(read.bytes == stored.bytes)
        #expect(read.mediaType == stored.mediaType)
        #expect(other.statistics.hits == 1)
        // The content is an OCI image layout a standard tool can read.
        #expect(FileManager.default.fileExists(atPath: directory + "/oci-layout"))
        #expect(FileManager.default.fileExists(atPath: directory + "/blobs/sha256/" + stored.digest.hex))
    }

    @Test func contentIsServedOnlyForARepositorySeenToHoldIt() {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/public")
        #expect(cache.manifest(stored.digest, repository: "r.test/private") == nil)
        #expect(cache.manifest(stored.digest, repository: "other.test/public") == nil)
        #expect(cache.manifest(stored.digest, repository: "r.test/public") != nil)
    }

    @Test func aDamagedManifestIsDeletedAndMissed() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let path = directory + "/blobs/sha256/" + stored.digest.hex
        try Data(#"{"schemaVersion":2,"layers":["forged"]}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(cache.statistics.corrupt == 1)
        // Stored again, it is served again.
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
    }

    @Test func storingWhatIsOnDiskAlreadyCreatesNoFilesButADifferenceIsWritten() throws {
        let stored = manifest()
        let before = cache.statistics.writes
        func written() -> Int { cache.statistics.writes - before }
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(written() == 2, "content and provenance")
        // The same again (a tag fetched after its TTL): nothing created.
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(written() == 2)
        // Another repository: its provenance only; the content is there.
        cache.storeManifest(stored, repository: "r.test/other")
        #expect(written() == 3)
        // Content changed in place (same size, other bytes): written again.
        let path = directory + "/blobs/sha256/" + stored.digest.hex
        var bytes = stored.bytes
        bytes[bytes.count - 2] = UInt8(ascii: " ")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(written() == 4)
        #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
    }

    @Test func aLinkOrAFIFOInTheCacheIsNeitherFollowedNorWaitedOn() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let content = directory + "/blobs/sha256/" + stored.digest.hex
        unlink(content)
        #expect(symlink("/etc/passwd", content) == 0)
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        var status = stat()
        #expect(lstat(content, &status) != 0, "the link is deleted")
        // A FIFO where a tag entry should be: opening it must not block.
        cache.storeTag(stored.digest, for: "r.test/app:v1")
        let tags = files(under: "ocirpc/v1/tags")
        let tag = directory + "/ocirpc/v1/tags/" + (try #require(tags.first))
        unlink(tag)
        #expect(mkfifo(tag, 0o600) == 0)
        #expect(cache.tag("r.test/app:v1", maxAge: 60) == nil)
        #expect(lstat(tag, &status) != 0, "the FIFO is deleted")
        #expect(cache.statistics.corrupt == 2)
    }

    @Test func anOversizedFileIsNotRead() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let path = directory + "/blobs/sha256/" + stored.digest.hex
        try Data(count: RegistryClient.maxManifestBytes + 1).write(to: URL(fileURLWithPath: path))
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        #expect(cache.statistics.corrupt == 1)
    }

    @Test func tagAnswersAreTrustedForTheirAgeOnly() throws {
        let digest = manifest().digest
        cache.storeTag(digest, for: "r.test/app:v1")
        #expect(cache.tag("r.test/app:v1", maxAge: 60) == digest)
        #expect(cache.tag("r.test/app:v2", maxAge: 60) == nil)
        #expect(cache.tag("r.test/app:v1", maxAge: 0) == nil)
        usleep(20_000)
        #expect(cache.tag("r.test/app:v1", maxAge: 0.01) == nil)
    }

    @Test func aMalformedTagEntryIsDeleted() throws {
        cache.storeTag(manifest().digest, for: "r.test/app:v1")
        let entries = files(under: "ocirpc/v1/tags")
        #expect(entries.count == 1)
        let path = directory + "/ocirpc/v1/tags/" + entries[0]
        try Data("sha256:nothex 1\nr.test/app:v1\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(cache.tag("r.test/app:v1", maxAge: 60) == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func writesLeaveNoTemporaryFiles() {
        for i in 0..<20 { cache.storeManifest(manifest("{\"n\":\(i)}"), repository: "r.test/app") }
        #expect(files(under: "ocirpc/v1/tmp").isEmpty)
        #expect(files(under: "blobs/sha256").count == 20)
    }

    @Test func aDirectoryThatCannotBeCreatedIsNoCache() throws {
        let file = directory + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        #expect(DiskCache.open(directory: file + "/cache", logger: .disabled) == nil)
    }

    @Test func aDiskThatStopsWritingFailsNothing() throws {
        // The temporary directory replaced by a file: every write fails.
        try FileManager.default.removeItem(atPath: directory + "/ocirpc/v1/tmp")
        try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/ocirpc/v1/tmp"))
        let writesBefore = cache.statistics.writes
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        cache.storeTag(stored.digest, for: "r.test/app:v1")
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        #expect(cache.statistics.failures >= 2)
        #expect(cache.statistics.writes == writesBefore)
    }

    /// Sets `path`'s time `secondsAgo` in the past.
    private func age(_ path: String, _ secondsAgo: Int) {
        var times = [
            timespec(tv_sec: time(nil) - secondsAgo, tv_nsec: 0), timespec(tv_sec: time(nil) - secondsAgo, tv_nsec: 0),
        ]
        utimensat(AT_FDCWD, path, &times, 0)
    }

    @Test func aTrimKeepsTheMostRecentlyUsedUnderTheBudget() throws {
        // Its own directory, stamped as just trimmed: only trimNow() trims it.
        let root = directory + "-small"
        try stampedCacheDirectory(root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let small = try #require(DiskCache.open(directory: root, budget: 10_000, logger: .disabled))
        var stored: [FetchedManifest] = []
        for i in 0..<20 {
            let manifest = manifest(#"{"n":\#(i),"pad":""# + String(repeating: "x", count: 1_000) + #""}"#)
            small.storeManifest(manifest, repository: "r.test/app")
            // Older the lower i: manifest 0 is the least recently used.
            age(root + "/blobs/sha256/" + manifest.digest.hex, 10_000 - i * 100)
            stored.append(manifest)
        }
        // Manifest 1 is used now: refreshed, it is kept.
        #expect(small.manifest(stored[1].digest, repository: "r.test/app") != nil)
        #expect(small.trimNow())
        let left = files(under: "blobs/sha256", in: root)
        let bytes = contentBytes(left, in: root)
        #expect(bytes <= 9_000)
        #expect(small.statistics.evictions == 20 - left.count)
        #expect(left.contains(stored[1].digest.hex))
        #expect(left.contains(stored[19].digest.hex))
        #expect(!left.contains(stored[0].digest.hex))
        // What was evicted is a miss, and its provenance is gone with it.
        #expect(small.manifest(stored[0].digest, repository: "r.test/app") == nil)
        #expect(files(under: "ocirpc/v1/repositories", in: root).count == left.count)
    }

    @Test func aFetchLockHeldByOneProcessMakesAnotherWaitForIt() async throws {
        // Two instances over one directory stand for two processes: flock
        // locks belong to each open file, so they exclude each other.
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let events = Locked([String]())
        let holding = AsyncStream<Void>.makeStream()
        let first = Task {
            try await cache.withFetchLock("r.test/app:v1") { waited in
                events.withLock { $0.append(waited ? "first waited" : "first in") }
                holding.continuation.yield()
                try await Task.sleep(for: .milliseconds(200))
                events.withLock { $0.append("first out") }
            }
        }
        for await _ in holding.stream { break }
        try await other.withFetchLock("r.test/app:v1") { waited in
            events.withLock { $0.append(waited ? "second waited" : "second in") }
        }
        try await first.value
        #expect(events.withLock { $0 } == ["first in", "first out", "second waited"])
        // Another key is not held up.
        try await other.withFetchLock("r.test/app:v2") { waited in #expect(!waited) }
    }

    @Test func aFetchLockIsReleasedOnlyOnceTheWritesOfItsFetchAreOnDisk() async throws {
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let fetched = manifest()
        // A slow disk: the writer is held until released.
        let release = DispatchSemaphore(value: 0)
        cache.writer.enqueue(bytes: 0) { release.wait() }
        try await cache.withFetchLock("r.test/app:v1") { _ in
            cache.storeManifestLater(fetched, repository: "r.test/app", tag: "r.test/app:v1")
        }
        // The answer is out, but the files are not: the other process waits.
        // (Released only once that process has started asking: on a loaded
        // machine its task may start late, and would then find the lock free.)
        let asking = Locked(false)
        let second = Task {
            asking.withLock { $0 = true }
            return try await other.withFetchLock("r.test/app:v1") { waited in
                (
                    waited, other.tag("r.test/app:v1", maxAge: 60),
                    other.manifest(fetched.digest, repository: "r.test/app")
                )
            }
        }
        while !asking.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(other.tag("r.test/app:v1", maxAge: 60) == nil)
        release.signal()
        let (waited, tag, kept) = try await second.value
        #expect(waited)
        #expect(tag == fetched.digest)
        #expect(kept?.bytes == fetched.bytes)
    }

    @Test func aTrimOfFilesOfOneTimeRemovesOnlyWhatItMust() throws {
        let root = directory + "-same"
        try stampedCacheDirectory(root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let small = try #require(DiskCache.open(directory: root, budget: 100_000, logger: .disabled))
        for i in 0..<400 {
            let stored = manifest(#"{"n":\#(i),"pad":""# + String(repeating: "x", count: 480) + #""}"#)
            small.storeManifest(stored, repository: "r.test/app")
            age(root + "/blobs/sha256/" + stored.digest.hex, 5_000)
        }
        #expect(small.trimNow())
        let left = files(under: "blobs/sha256", in: root)
        let bytes = contentBytes(left, in: root)
        // Under 90% of the budget, and not emptied: about that much is kept.
        #expect(bytes <= 90_000)
        #expect(bytes >= 89_000)
    }

    @Test func aTrimRemovesStaleTagsAndAbandonedTemporaryFiles() throws {
        cache.storeTag(manifest().digest, for: "r.test/app:old")
        cache.storeTag(manifest().digest, for: "r.test/app:new")
        let tags = files(under: "ocirpc/v1/tags")
        #expect(tags.count == 2)
        let old = try #require(
            tags.first {
                (try? String(contentsOfFile: directory + "/ocirpc/v1/tags/" + $0, encoding: .utf8))?.contains(":old")
                    == true
            })
        age(directory + "/ocirpc/v1/tags/" + old, 31 * 86_400)
        let abandoned = directory + "/ocirpc/v1/tmp/write-abandoned"
        try Data("half".utf8).write(to: URL(fileURLWithPath: abandoned))
        age(abandoned, 2 * 3_600)
        #expect(cache.trimNow())
        #expect(files(under: "ocirpc/v1/tags").count == 1)
        #expect(!FileManager.default.fileExists(atPath: abandoned))
    }

    @Test func onlyOneTrimRunsAndNotTwiceWithinTheInterval() throws {
        // A directory of its own: no cache instance trims it in the background.
        let root = directory + "-trim"
        try FileManager.default.createDirectory(atPath: root + "/ocirpc/v1", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let trimmer = DiskCacheTrimmer(root: root, tables: root + "/ocirpc/v1", budget: 1 << 20)
        #expect(trimmer.trimIfDue(now: Double(time(nil))) != nil)
        #expect(trimmer.trimIfDue(now: Double(time(nil))) == nil, "the stamp says it just ran")
        // Another holder of the lock: skipped, not waited for.
        let fd = open(root + "/ocirpc/v1/trim.lock", O_RDWR)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(trimmer.trim(now: Double(time(nil))) == nil)
        close(fd)
        #expect(trimmer.trim(now: Double(time(nil))) != nil)
    }

    @Test func derivedResultsRoundTripAndDamageIsCaught() throws {
        cache.storeDerived("image_files", "r.test/app@sha256:x|[\"etc\"]", Array(#"{"a":1}"#.utf8))
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.derived("image_files", "r.test/app@sha256:x|[\"etc\"]") == Array(#"{"a":1}"#.utf8))
        #expect(other.derived("image_files", "r.test/other@sha256:x|[\"etc\"]") == nil)
        #expect(other.derived("blob_files", "r.test/app@sha256:x|[\"etc\"]") == nil)
        // The body changed by hand: its hash no longer matches, it is deleted.
        let entries = files(under: "ocirpc/v1/derived")
        #expect(entries.count == 1)
        let path = directory + "/ocirpc/v1/derived/" + entries[0]
        var stored = try Data(contentsOf: URL(fileURLWithPath: path))
        stored[stored.count - 2] = UInt8(ascii: "2")
        try stored.write(to: URL(fileURLWithPath: path))
        #expect(other.derived("image_files", "r.test/app@sha256:x|[\"etc\"]") == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        // Names with a newline and oversized results are never kept.
        cache.storeDerived("k", "a\nb", Array("1".utf8))
        cache.storeDerived("k", "big", [UInt8](repeating: 0x20, count: DiskCache.maxDerivedBytes + 1))
        #expect(files(under: "ocirpc/v1/derived").isEmpty)
    }
}
