import Foundation
import Glibc
import Logging
import Registry
import Testing

@testable import DiskCaching

@Suite struct DiskCacheTests {
    let directory: String
    let cache: DiskCache

    init() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-disk-\(UUID().uuidString)").path
        cache = try #require(DiskCache.open(directory: directory, logger: .disabled))
    }

    private func manifest(_ text: String = #"{"schemaVersion":2,"layers":[]}"#) -> FetchedManifest {
        FetchedManifest(bytes: Array(text.utf8), mediaType: ManifestMediaType.ociManifest)
    }

    private func files(under path: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory + "/" + path)?.allObjects as? [String] ?? [])
            .filter { !$0.hasSuffix("/") && !(($0 as NSString).lastPathComponent.isEmpty) }
            .filter {
                var isDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: directory + "/" + path + "/" + $0, isDirectory: &isDirectory)
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
}
