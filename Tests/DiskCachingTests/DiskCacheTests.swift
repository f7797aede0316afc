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

    /// The journal file of `repository`.
    private func journalPath(_ repository: String, in root: String? = nil) -> String {
        (root ?? directory) + "/ocirpc/v2/journals/" + Digest.of(Array(repository.utf8)).hex
    }

    private func fileSize(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    }

    /// The warning names the directory that could not be made and why (it
    /// was Foundation's error, printed whole).
    @Test func aDirectoryThatCannotBeMadeIsNamedWithItsReason() throws {
        let file = directory + "/a-file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect(throws: Never.self) { try DiskCache.makeDirectories(directory + "/made/twice") }
        #expect(throws: Never.self) { try DiskCache.makeDirectories(directory + "/made/twice") }
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: directory + "/made/twice", isDirectory: &isDirectory))
        #expect(isDirectory.boolValue)
        let error = #expect(throws: DiskCacheError.self) { try DiskCache.makeDirectories(file + "/below") }
        #expect(error?.description == "cannot make \(file)/below: Not a directory")
    }

    @Test func aStoredManifestIsReadBackByAnotherInstance() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let read = try #require(other.manifest(stored.digest, repository: "r.test/app"))
        #expect(read.bytes == stored.bytes)
        #expect(read.mediaType == stored.mediaType)
        #expect(other.statistics.hits == 1)
        // One file for the repository; blobs beside it in an OCI image layout.
        #expect(files(under: "ocirpc/v2/journals") == [Digest.of(Array("r.test/app".utf8)).hex])
        #expect(FileManager.default.fileExists(atPath: directory + "/oci-layout"))
    }

    @Test func contentIsServedOnlyForARepositorySeenToHoldIt() {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/public")
        #expect(cache.manifest(stored.digest, repository: "r.test/private") == nil)
        #expect(cache.manifest(stored.digest, repository: "other.test/public") == nil)
        #expect(cache.manifest(stored.digest, repository: "r.test/public") != nil)
    }

    /// Replaces `old` with `new` (of the same length) in the file at `path`.
    private func overwrite(_ path: String, _ old: String, with new: String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let range = try #require(bytes.range(of: Data(old.utf8)))
        var changed = bytes
        changed.replaceSubrange(range, with: Data(new.utf8))
        try changed.write(to: URL(fileURLWithPath: path))
    }

    @Test func aDamagedManifestIsDeletedAndMissedByItsHashAndByItsChecksum() throws {
        let stored = manifest(#"{"schemaVersion":2,"layers":["real"]}"#)
        cache.storeManifest(stored, repository: "r.test/app")
        let path = journalPath("r.test/app")
        // This instance has read the journal: the hash of the bytes catches it.
        try overwrite(path, "real", with: "fake")
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(cache.statistics.corrupt == 1)
        // Stored again, it is served again.
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
        // Another that reads it after the damage: the record's checksum catches it.
        try overwrite(path, "real", with: "fake")
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.manifest(stored.digest, repository: "r.test/app") == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(other.statistics.corrupt == 1)
    }

    /// Puts an empty file (another inode) where the journal of `repository` is.
    private func replaceJournalWithAnEmptyOne(_ repository: String) throws {
        let path = journalPath(repository)
        try Data().write(to: URL(fileURLWithPath: path + ".new"))
        #expect(rename(path + ".new", path) == 0)
    }

    @Test func aJournalKeptOpenServesItsReadsWithoutOpeningItsPathAgain() throws {
        let cache = try #require(
            DiskCache.open(directory: directory, logger: .disabled, journalRecheckInterval: UInt64.max))
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
        // One kept for appending, one for reading.
        #expect(cache.openJournalFiles.withLock { $0 } == 2)
        // The path now names an empty file; the file read before is still
        // the one read (its bytes checked against the digest as ever).
        try replaceJournalWithAnEmptyOne("r.test/app")
        #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
        #expect(cache.openJournalFiles.withLock { $0 } == 2)
    }

    @Test func aJournalReplacedOnDiskIsNoLongerReadOnceItsRecheckIsDue() throws {
        let cache = try #require(DiskCache.open(directory: directory, logger: .disabled, journalRecheckInterval: 0))
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
        try replaceJournalWithAnEmptyOne("r.test/app")
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        // The file kept for reading is let go; the one kept for appending
        // is let go at the next append.
        #expect(cache.journal("r.test/app").reader.withLock { $0 == nil })
        #expect(cache.openJournalFiles.withLock { $0 } == 1)
    }

    @Test func anAppendAfterTheJournalWasReplacedGoesToTheNewFileOnceItsRecheckIsDue() throws {
        let cache = try #require(DiskCache.open(directory: directory, logger: .disabled, journalRecheckInterval: 0))
        let first = manifest(#"{"n":1}"#)
        let second = manifest(#"{"n":2}"#)
        cache.storeManifest(first, repository: "r.test/app")
        try replaceJournalWithAnEmptyOne("r.test/app")
        cache.storeManifest(second, repository: "r.test/app")
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.manifest(second.digest, repository: "r.test/app")?.bytes == second.bytes)
        #expect(other.manifest(first.digest, repository: "r.test/app") == nil)
    }

    @Test func anAppendAfterTheJournalWasFoundReplacedGoesToTheNewFile() throws {
        // The kept file is trusted for an hour, but this process has looked
        // in the path since (what precedes a fetch, and so its append) and
        // found another file there.
        let cache = try #require(
            DiskCache.open(directory: directory, logger: .disabled, journalRecheckInterval: 3_600_000_000_000))
        let first = manifest(#"{"n":1}"#)
        let second = manifest(#"{"n":2}"#)
        cache.storeManifest(first, repository: "r.test/app")
        try replaceJournalWithAnEmptyOne("r.test/app")
        #expect(cache.tag("r.test/app:v2", repository: "r.test/app", maxAge: 60) == nil)
        cache.storeManifest(second, repository: "r.test/app", tag: "r.test/app:v2")
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.manifest(second.digest, repository: "r.test/app")?.bytes == second.bytes)
        #expect(cache.manifest(second.digest, repository: "r.test/app")?.bytes == second.bytes)
    }

    @Test func appendsMadeAtOnceByOneProcessAreAllKeptAndIndexed() throws {
        let manifests = (0..<1000).map { manifest(#"{"n":\#($0)}"#) }
        cache.storeManifest(manifest(), repository: "r.test/app")
        DispatchQueue.concurrentPerform(iterations: manifests.count) { n in
            cache.storeManifest(manifests[n], repository: "r.test/app", tag: "r.test/app:v\(n)")
        }
        let appended = cache.journal("r.test/app").index.withLock { $0 }
        #expect(appended.consumed == fileSize(journalPath("r.test/app")))
        for (n, stored) in manifests.enumerated() {
            #expect(appended.manifests[stored.digest] != nil)
            #expect(appended.tags["r.test/app:v\(n)"]?.digest == stored.digest)
            #expect(cache.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
        }
        #expect(cache.statistics.corrupt == 0)
    }

    @Test func noMoreJournalFilesStayOpenThanTheLimit() throws {
        let repositories = (0..<(DiskCache.maxOpenJournalFiles + 8)).map { "r.test/app\($0)" }
        let stored = manifest()
        for repository in repositories { cache.storeManifest(stored, repository: repository) }
        for _ in 0..<2 {
            for repository in repositories {
                #expect(cache.manifest(stored.digest, repository: repository)?.bytes == stored.bytes)
            }
        }
        #expect(cache.openJournalFiles.withLock { $0 } == DiskCache.maxOpenJournalFiles)
    }

    @Test func aManifestTheJournalHoldsIsNotAppendedAgain() throws {
        let stored = manifest()
        let before = cache.statistics.writes
        func written() -> Int { cache.statistics.writes - before }
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(written() == 1)
        let size = fileSize(journalPath("r.test/app"))
        // The same again (a tag fetched after its TTL): nothing appended.
        cache.storeManifest(stored, repository: "r.test/app")
        #expect(written() == 1)
        #expect(fileSize(journalPath("r.test/app")) == size)
        // Known from another process's append: nothing appended either.
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        other.storeManifest(stored, repository: "r.test/app")
        #expect(other.statistics.writes == 0)
        // Another repository: its own journal.
        cache.storeManifest(stored, repository: "r.test/other")
        #expect(written() == 2)
        #expect(fileSize(journalPath("r.test/other")) == size)
    }

    @Test func whatAnAppendTakesInIsWhatReadingTheFileFinds() throws {
        let first = manifest(#"{"n":1}"#)
        let second = manifest(#"{"n":2}"#)
        cache.storeManifest(first, repository: "r.test/app", tag: "r.test/app:v1")
        cache.storeManifest(second, repository: "r.test/app", tag: "r.test/app:v2")
        cache.storeTag(first.digest, for: "r.test/app:v3", repository: "r.test/app")
        let appended = cache.journal("r.test/app").index.withLock { $0 }
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let journal = other.journal("r.test/app")
        let read = journal.index.withLock { index in
            other.refresh(&index, journal.path)
            return index
        }
        #expect(appended.consumed == fileSize(journalPath("r.test/app")))
        #expect(read.consumed == appended.consumed)
        #expect(read.file == appended.file)
        #expect(read.manifests.count == 2)
        for digest in [first.digest, second.digest] {
            #expect(read.manifests[digest]?.body == appended.manifests[digest]?.body)
            #expect(read.manifests[digest]?.mediaType == appended.manifests[digest]?.mediaType)
        }
        #expect(Set(read.tags.keys) == ["r.test/app:v1", "r.test/app:v2", "r.test/app:v3"])
        for (reference, tag) in read.tags {
            #expect(appended.tags[reference]?.digest == tag.digest)
            #expect(appended.tags[reference]?.fetchedAt == tag.fetchedAt)
        }
    }

    @Test func recordsAnotherProcessAppendsAreFoundOnAMiss() throws {
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let first = manifest(#"{"n":1}"#)
        let second = manifest(#"{"n":2}"#)
        cache.storeManifest(first, repository: "r.test/app", tag: "r.test/app:v1")
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == first.digest)
        #expect(other.tag("r.test/app:v2", repository: "r.test/app", maxAge: 60) == nil)
        // Appended after the other read the journal: read on its miss.
        cache.storeManifest(second, repository: "r.test/app", tag: "r.test/app:v2")
        cache.storeTag(second.digest, for: "r.test/app:v1", repository: "r.test/app")
        #expect(other.tag("r.test/app:v2", repository: "r.test/app", maxAge: 60) == second.digest)
        #expect(other.manifest(second.digest, repository: "r.test/app")?.bytes == second.bytes)
        // The latest answer for a tag wins.
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == second.digest)
    }

    @Test func aLinkOrAFIFOInTheCacheIsNeitherFollowedNorWaitedOn() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let path = journalPath("r.test/app")
        unlink(path)
        #expect(symlink("/etc/passwd", path) == 0)
        #expect(cache.manifest(stored.digest, repository: "r.test/app") == nil)
        var status = stat()
        #expect(lstat(path, &status) != 0, "the link is deleted")
        // A FIFO where a journal should be: opening it must not block.
        #expect(mkfifo(path, 0o600) == 0)
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == nil)
        #expect(lstat(path, &status) != 0, "the FIFO is deleted")
        #expect(cache.statistics.corrupt + other.statistics.corrupt == 2)
        // And a FIFO met when appending.
        #expect(mkfifo(path, 0o600) == 0)
        cache.storeTag(stored.digest, for: "r.test/app:v1", repository: "r.test/app")
        #expect(lstat(path, &status) != 0, "the FIFO is deleted")
    }

    @Test func anOversizedJournalIsNotRead() throws {
        cache.storeTag(manifest().digest, for: "r.test/app:v1", repository: "r.test/app")
        let path = journalPath("r.test/app")
        #expect(truncate(path, off_t(DiskCache.maxJournalFileBytes + 1)) == 0)
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == nil)
        #expect(other.statistics.corrupt == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aJournalPastItsLimitStartsOver() throws {
        // Six manifests of 3 MiB: the sixth does not fit in 16 MiB.
        let big = (0..<6).map { i in
            manifest(#"{"n":\#(i),"pad":""# + String(repeating: "x", count: 3 << 20) + #""}"#)
        }
        for stored in big { cache.storeManifest(stored, repository: "r.test/big") }
        let path = journalPath("r.test/big")
        #expect(fileSize(path) > 3 << 20)
        #expect(fileSize(path) < 4 << 20, "the sixth alone")
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.manifest(big[5].digest, repository: "r.test/big")?.bytes == big[5].bytes)
        #expect(other.manifest(big[0].digest, repository: "r.test/big") == nil)
        // This instance noticed its own new file.
        #expect(cache.manifest(big[5].digest, repository: "r.test/big")?.bytes == big[5].bytes)
        #expect(cache.manifest(big[0].digest, repository: "r.test/big") == nil)
        #expect(cache.statistics.corrupt == 0)
    }

    /// Answers to two tags with references of 4,000 bytes, appended in
    /// turn until the journal of `repository` has passed its limit.
    private func fillWithTagAnswers(_ repository: String, _ digests: [Digest]) -> [String] {
        let tags = ["1", "2"].map { "\(repository):" + String(repeating: "v", count: 4_000) + $0 }
        for round in 0..<(DiskCache.maxJournalBytes / 4_000 + 8) {
            cache.storeTag(digests[round % digests.count], for: tags[round % 2], repository: repository)
        }
        return tags
    }

    @Test func aJournalAtItsLimitIsWrittenAnewWithWhatItStillSays() throws {
        let kept = manifest(#"{"schemaVersion":2,"kept":true}"#)
        let other = manifest(#"{"schemaVersion":2,"other":true}"#)
        cache.storeManifest(kept, repository: "r.test/app")
        let tags = fillWithTagAnswers("r.test/app", [kept.digest, other.digest, other.digest])
        #expect(cache.statistics.compactions >= 1)
        // Two latest answers, the manifest, what was appended since: small.
        #expect(fileSize(journalPath("r.test/app")) < 1 << 20)
        let rounds = DiskCache.maxJournalBytes / 4_000 + 8
        let latest = (0..<2).map { tag in (0..<rounds).last { $0 % 2 == tag }! }
        for reader in [cache, try #require(DiskCache.open(directory: directory, logger: .disabled))] {
            #expect(reader.manifest(kept.digest, repository: "r.test/app")?.bytes == kept.bytes)
            for tag in 0..<2 {
                let answer = [kept.digest, other.digest, other.digest][latest[tag] % 3]
                #expect(reader.tag(tags[tag], repository: "r.test/app", maxAge: 60) == answer)
            }
        }
        #expect(cache.statistics.corrupt == 0)
    }

    @Test func aJournalMostlyOfReplacedAnswersIsWrittenAnewLongBeforeItsLimit() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        let tags = ["1", "2"].map { "r.test/app:" + String(repeating: "v", count: 4_000) + $0 }
        // 100 answers to two tags: ~400 KB, all but two of them replaced.
        for round in 0..<100 { cache.storeTag(stored.digest, for: tags[round % 2], repository: "r.test/app") }
        #expect(cache.statistics.compactions >= 1)
        #expect(fileSize(journalPath("r.test/app")) < DiskCache.minReplacedBytes + (64 << 10))
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.manifest(stored.digest, repository: "r.test/app")?.bytes == stored.bytes)
        for tag in tags { #expect(other.tag(tag, repository: "r.test/app", maxAge: 60) == stored.digest) }
    }

    @Test func aJournalThatCannotBeWrittenAnewIsNotTriedAgainOnEveryAppend() throws {
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        // New files are made in tmp/: a file in its place fails every one.
        let temporary = directory + "/ocirpc/v2/tmp"
        try FileManager.default.removeItem(atPath: temporary)
        try Data().write(to: URL(fileURLWithPath: temporary))
        let tags = ["1", "2"].map { "r.test/app:" + String(repeating: "v", count: 4_000) + $0 }
        for round in 0..<100 { cache.storeTag(stored.digest, for: tags[round % 2], repository: "r.test/app") }
        #expect(cache.statistics.compactions == 0)
        // One attempt per 256 KiB of replaced answers at most, not one per append.
        #expect(cache.statistics.failures <= 2)
        // The appends themselves went on.
        try FileManager.default.removeItem(atPath: temporary)
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        for tag in tags { #expect(other.tag(tag, repository: "r.test/app", maxAge: 60) == stored.digest) }
    }

    @Test func aJournalOfDistinctAnswersIsNotWrittenAnew() throws {
        let stored = manifest()
        for tag in 0..<100 {
            let reference = "r.test/app:" + String(repeating: "v", count: 4_000) + String(tag)
            cache.storeTag(stored.digest, for: reference, repository: "r.test/app")
        }
        #expect(fileSize(journalPath("r.test/app")) > 100 * 4_000)
        #expect(cache.statistics.compactions == 0)
    }

    @Test func aDamagedManifestIsNotCarriedIntoAJournalWrittenAnew() throws {
        let damaged = manifest(#"{"schemaVersion":2,"layers":["real"]}"#)
        let sound = manifest(#"{"schemaVersion":2,"layers":["also"]}"#)
        cache.storeManifest(damaged, repository: "r.test/app")
        cache.storeManifest(sound, repository: "r.test/app")
        try overwrite(journalPath("r.test/app"), "real", with: "fake")
        _ = fillWithTagAnswers("r.test/app", [sound.digest])
        #expect(cache.statistics.compactions >= 1)
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.manifest(damaged.digest, repository: "r.test/app") == nil)
        #expect(other.manifest(sound.digest, repository: "r.test/app")?.bytes == sound.bytes)
        #expect(other.statistics.corrupt == 0, "left out, not written with its damage")
    }

    @Test func tagAnswersAreTrustedForTheirAgeOnly() throws {
        let digest = manifest().digest
        cache.storeTag(digest, for: "r.test/app:v1", repository: "r.test/app")
        #expect(cache.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == digest)
        #expect(cache.tag("r.test/app:v2", repository: "r.test/app", maxAge: 60) == nil)
        #expect(cache.tag("r.test/app:v1", repository: "r.test/other", maxAge: 60) == nil)
        #expect(cache.tag("r.test/app:v1", repository: "r.test/app", maxAge: 0) == nil)
        usleep(20_000)
        #expect(cache.tag("r.test/app:v1", repository: "r.test/app", maxAge: 0.01) == nil)
    }

    @Test func aRecordWithAGoodChecksumButNotOfTheCachesFormatDiscardsTheJournal() throws {
        cache.storeTag(manifest().digest, for: "r.test/app:v1", repository: "r.test/app")
        let path = journalPath("r.test/app")
        let payload = Array("sha256:nothex 1\nr.test/app:v2".utf8)
        let checksum = String(JournalRecord.checksum(payload[...]), radix: 16)
        let record = "t \(payload.count) \(String(repeating: "0", count: 8 - checksum.count) + checksum)\n"
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(record.utf8) + Data(payload) + Data("\n".utf8))
        try handle.close()
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == nil)
        #expect(other.statistics.corrupt == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aRecordCutShortIsWaitedForUntilRecordsFollowIt() throws {
        let stored = manifest()
        cache.storeTag(stored.digest, for: "r.test/app:v1", repository: "r.test/app")
        let path = journalPath("r.test/app")
        // Half a record at the end, as a writer mid-append leaves it.
        let half = Array(JournalRecord.tagBytes("r.test/app:v2", stored.digest, fetchedAt: 1).prefix(40))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(half))
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == stored.digest)
        #expect(other.tag("r.test/app:v2", repository: "r.test/app", maxAge: 60) == nil)
        #expect(other.statistics.corrupt == 0, "not damage: its writer may finish it")
        // A record after it: the half one was never finished, and what
        // follows cannot be told apart from it. The journal goes.
        handle.write(Data(JournalRecord.tagBytes("r.test/app:v3", stored.digest, fetchedAt: Double(time(nil)))))
        try handle.close()
        #expect(other.tag("r.test/app:v3", repository: "r.test/app", maxAge: 60) == nil)
        #expect(other.statistics.corrupt == 1)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func processesAppendingAtOnceLoseNoRecord() async throws {
        // Instances stand for processes: each appends through its own
        // open file, four threads at once, records that span pages.
        let writers = try (0..<4).map { _ in try #require(DiskCache.open(directory: directory, logger: .disabled)) }
        let count = 50
        let stored = (0..<(writers.count * count)).map { i in
            manifest(#"{"n":\#(i),"pad":""# + String(repeating: "y", count: 5_000 + i) + #""}"#)
        }
        await withTaskGroup(of: Void.self) { group in
            for (w, writer) in writers.enumerated() {
                group.addTask {
                    for i in 0..<count {
                        let manifest = stored[w * count + i]
                        writer.storeManifest(manifest, repository: "r.test/app", tag: "r.test/app:t\(w * count + i)")
                    }
                }
            }
        }
        let reader = try #require(DiskCache.open(directory: directory, logger: .disabled))
        for (i, manifest) in stored.enumerated() {
            #expect(reader.tag("r.test/app:t\(i)", repository: "r.test/app", maxAge: 60) == manifest.digest)
            #expect(reader.manifest(manifest.digest, repository: "r.test/app")?.bytes == manifest.bytes)
        }
        #expect(reader.statistics.corrupt == 0)
    }

    @Test func manyRepositoriesAreServedPastTheJournalsKeptInMemory() throws {
        let repositories = (0..<(DiskCache.maxJournalsInMemory + 20)).map { "r.test/app\($0)" }
        let stored = manifest()
        for repository in repositories { cache.storeManifest(stored, repository: repository) }
        for repository in repositories {
            #expect(cache.manifest(stored.digest, repository: repository) != nil)
        }
    }

    @Test func writesLeaveNoTemporaryFiles() {
        let before = cache.statistics.writes
        for i in 0..<20 { cache.storeManifest(manifest("{\"n\":\(i)}"), repository: "r.test/app") }
        #expect(files(under: "ocirpc/v2/tmp").isEmpty)
        #expect(files(under: "ocirpc/v2/journals").count == 1)
        #expect(cache.statistics.writes - before == 20, "one append each")
    }

    @Test func aDirectoryThatCannotBeCreatedIsNoCache() throws {
        let file = directory + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        #expect(DiskCache.open(directory: file + "/cache", logger: .disabled) == nil)
    }

    @Test func aDiskThatStopsWritingFailsNothing() throws {
        // The journals' directory replaced by a file: every append fails.
        try FileManager.default.removeItem(atPath: directory + "/ocirpc/v2/journals")
        try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/ocirpc/v2/journals"))
        let writesBefore = cache.statistics.writes
        let stored = manifest()
        cache.storeManifest(stored, repository: "r.test/app")
        cache.storeTag(stored.digest, for: "r.test/app:v1", repository: "r.test/app")
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
        // One repository each: a journal is what a trim removes.
        for i in 0..<20 {
            let manifest = manifest(#"{"n":\#(i),"pad":""# + String(repeating: "x", count: 1_000) + #""}"#)
            small.storeManifest(manifest, repository: "r.test/app\(i)")
            // Older the lower i: repository 0 is the least recently used.
            age(journalPath("r.test/app\(i)", in: root), 10_000 - i * 100)
            stored.append(manifest)
        }
        // Repository 1 is used now: refreshed, it is kept.
        #expect(small.manifest(stored[1].digest, repository: "r.test/app1") != nil)
        #expect(small.trimNow())
        let journals = root + "/ocirpc/v2/journals"
        let left = files(under: "ocirpc/v2/journals", in: root)
        #expect(fileBytes(left, in: journals) <= 9_000)
        #expect(small.statistics.evictions == 20 - left.count)
        func kept(_ i: Int) -> Bool { left.contains(Digest.of(Array("r.test/app\(i)".utf8)).hex) }
        #expect(kept(1))
        #expect(kept(19))
        #expect(!kept(0))
        // What was evicted is a miss.
        #expect(small.manifest(stored[0].digest, repository: "r.test/app0") == nil)
        #expect(small.manifest(stored[19].digest, repository: "r.test/app19") != nil)
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

    @Test func aKeysFetchLockIsTheSameByteInEveryProcess() {
        // Its CRC-32 modulo the slots (Python: zlib.crc32(key) % 2**30), not
        // a hash seeded per process, which would give every process its own.
        #expect(DiskCache.fetchLockSlot("r.test/app:v1") == 355_099_201)
        #expect(DiskCache.fetchLockSlot("blob sha256:" + String(repeating: "0", count: 64)) == 230_612_212)
    }

    @Test func aProcessThatWaitedOnAFetchLockFindsWhatTheFetchKept() async throws {
        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let fetched = manifest()
        let holding = AsyncStream<Void>.makeStream()
        let first = Task {
            try await cache.withFetchLock("r.test/app:v1") { _ in
                holding.continuation.yield()
                // A slow registry: the other asks meanwhile, and finds nothing.
                try await Task.sleep(for: .milliseconds(200))
                cache.storeManifest(fetched, repository: "r.test/app", tag: "r.test/app:v1")
            }
        }
        for await _ in holding.stream { break }
        #expect(other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60) == nil)
        let (waited, tag, kept) = try await other.withFetchLock("r.test/app:v1") { waited in
            (
                waited, other.tag("r.test/app:v1", repository: "r.test/app", maxAge: 60),
                other.manifest(fetched.digest, repository: "r.test/app")
            )
        }
        try await first.value
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
            small.storeManifest(stored, repository: "r.test/app\(i)")
            age(journalPath("r.test/app\(i)", in: root), 5_000)
        }
        #expect(small.trimNow())
        let journals = root + "/ocirpc/v2/journals"
        let bytes = fileBytes(files(under: "ocirpc/v2/journals", in: root), in: journals)
        // Under 90% of the budget, and not emptied: about that much is kept.
        #expect(bytes <= 90_000)
        #expect(bytes >= 89_000)
    }

    /// A directory of thousands of entries, names of every length: the
    /// trim lists each name as it lies, never reading past its entry (under
    /// the address sanitizer, copying whole `dirent`s was caught here).
    @Test func aCrowdedDirectoryIsListedWithoutReadingPastItsEntries() throws {
        let crowded = directory + "/crowded"
        try FileManager.default.createDirectory(atPath: crowded, withIntermediateDirectories: true)
        var made = Set<String>()
        for index in 0..<3000 {
            let name = String(repeating: "n", count: 1 + index % 40) + "\(index)"
            #expect(FileManager.default.createFile(atPath: crowded + "/" + name, contents: Data(count: index % 7)))
            made.insert(name)
        }
        var listed = Set<String>()
        var bytes = 0
        DiskCacheTrimmer.forEachEntry(in: crowded) { name, status in
            listed.insert(name)
            bytes += Int(status.st_size)
        }
        #expect(listed == made)
        #expect(bytes == (0..<3000).reduce(0) { $0 + $1 % 7 })
    }

    @Test func aTrimRemovesAbandonedTemporaryFilesAndTablesOfAnOlderFormat() throws {
        let legacy = directory + "/ocirpc/v1/tags"
        try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: true)
        try Data("sha256:x 1\nr.test/app:v1\n".utf8).write(to: URL(fileURLWithPath: legacy + "/entry"))
        let abandoned = directory + "/ocirpc/v2/tmp/write-abandoned"
        try Data("half".utf8).write(to: URL(fileURLWithPath: abandoned))
        age(abandoned, 2 * 3_600)
        let recent = directory + "/ocirpc/v2/tmp/write-recent"
        try Data("half".utf8).write(to: URL(fileURLWithPath: recent))
        #expect(cache.trimNow())
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(FileManager.default.fileExists(atPath: recent), "perhaps being written")
        #expect(!FileManager.default.fileExists(atPath: directory + "/ocirpc/v1"))
    }

    @Test func onlyOneTrimRunsAndNotTwiceWithinTheInterval() throws {
        // A directory of its own: no cache instance trims it in the background.
        let root = directory + "-trim"
        try FileManager.default.createDirectory(atPath: root + "/ocirpc/v2", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let trimmer = DiskCacheTrimmer(root: root, tables: root + "/ocirpc/v2", budget: 1 << 20)
        #expect(trimmer.trimIfDue(now: Double(time(nil))) != nil)
        #expect(trimmer.trimIfDue(now: Double(time(nil))) == nil, "the stamp says it just ran")
        // Another holder of the lock: skipped, not waited for.
        let fd = open(root + "/ocirpc/v2/trim.lock", O_RDWR)
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
        let entries = files(under: "ocirpc/v2/derived")
        #expect(entries.count == 1)
        let path = directory + "/ocirpc/v2/derived/" + entries[0]
        var stored = try Data(contentsOf: URL(fileURLWithPath: path))
        stored[stored.count - 2] = UInt8(ascii: "2")
        try stored.write(to: URL(fileURLWithPath: path))
        #expect(other.derived("image_files", "r.test/app@sha256:x|[\"etc\"]") == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
        // Names with a newline and oversized results are never kept.
        cache.storeDerived("k", "a\nb", Array("1".utf8))
        cache.storeDerived("k", "big", [UInt8](repeating: 0x20, count: DiskCache.maxDerivedBytes + 1))
        #expect(files(under: "ocirpc/v2/derived").isEmpty)
    }
}
