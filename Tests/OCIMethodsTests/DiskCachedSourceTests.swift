import DiskCaching
import Foundation
import JSON
import Locking
import Registry
import Testing

@testable import OCIMethods

/// The disk cache between two content services (two processes, in effect)
/// and one in-memory registry: what the second asks of the registry.
@Suite struct DiskCachedSourceTests {
    let registry: InMemorySource
    let directory: String

    init() throws {
        registry = try InMemorySource()
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-disk-\(UUID().uuidString)").path
    }

    /// A new service over the shared directory, as a new process would have.
    private func process(tagTTL: Double = 60) throws -> ContentService {
        let disk = try #require(DiskCache.open(directory: directory, logger: .disabled))
        return ContentService(
            source: DiskCachedSource(upstream: registry, disk: disk, tagTTL: tagTTL), cacheBytes: 1 << 20,
            tagTTL: tagTTL,
            defaultPlatform: .linuxAMD64)
    }

    @Test func aSecondProcessAsksTheRegistryNothing() async throws {
        let image = registry.putImage("r.test/app", tag: "v1")
        let byTag = try ImageReference.parse("r.test/app:v1")
        let byDigest = try ImageReference.parse("r.test/app@\(image.digest)")
        let first = try process()
        let answers = [
            try await first.imageManifestResult(byTag, platform: .linuxAMD64),
            try await first.imageManifestResult(byDigest, platform: .linuxAMD64),
            try await first.descriptor(byTag),
        ]
        #expect(registry.calls == ["GET r.test/app:v1"])
        let second = try process()
        #expect(try await second.imageManifestResult(byTag, platform: .linuxAMD64) == answers[0])
        #expect(try await second.imageManifestResult(byDigest, platform: .linuxAMD64) == answers[1])
        #expect(try await second.descriptor(byTag) == answers[2])
        #expect(registry.calls == ["GET r.test/app:v1"])
    }

    @Test func anotherRepositoryGetsNothingFromTheDisk() async throws {
        let image = registry.putImage("r.test/holder")
        let first = try process()
        _ = try await first.imageManifestResult(
            try ImageReference.parse("r.test/holder@\(image.digest)"), platform: .linuxAMD64)
        let second = try process()
        await #expect(throws: RegistryError.self) {
            _ = try await second.imageManifestResult(
                try ImageReference.parse("r.test/stranger@\(image.digest)"), platform: .linuxAMD64)
        }
        #expect(registry.calls == ["GET r.test/holder@\(image.digest)", "GET r.test/stranger@\(image.digest)"])
    }

    @Test func aBlobKeptByOneProcessIsReadFromDiskByTheNextForItsRepositoryOnly() async throws {
        let layer = Array("layer bytes".utf8)
        let digest = registry.putBlob(layer)
        let held = try ImageReference.parse("r.test/holder@\(digest)")
        #expect(try await process().blob(held) == layer)
        #expect(try await process().blob(held) == layer)
        #expect(registry.calls == ["BLOB \(digest)"])
        // Another repository: the registry decides.
        #expect(try await process().blob(try ImageReference.parse("r.test/stranger@\(digest)")) == layer)
        #expect(registry.calls == ["BLOB \(digest)", "BLOB \(digest)"])
    }

    @Test func aTagOlderThanTheTTLIsAskedAgain() async throws {
        registry.putImage("r.test/app", tag: "v1")
        let byTag = try ImageReference.parse("r.test/app:v1")
        _ = try await process(tagTTL: 0.05).imageManifestResult(byTag, platform: .linuxAMD64)
        try await Task.sleep(for: .milliseconds(80))
        _ = try await process(tagTTL: 0.05).imageManifestResult(byTag, platform: .linuxAMD64)
        #expect(registry.calls == ["GET r.test/app:v1", "GET r.test/app:v1"])
    }

    @Test func aBatchOverAnIndexOnDiskIsAnsweredBeforeAnyWorkerStarts() async throws {
        let amd = registry.putImage("r.test/multi", config: "sha256:" + String(repeating: "a", count: 64))
        let entry: JSONValue = [
            "mediaType": .string(amd.mediaType), "size": .integer(amd.bytes.count),
            "digest": .string(amd.digest.description),
            "platform": ["os": "linux", "architecture": "amd64"],
        ]
        registry.put(
            "r.test/multi", tag: "v1",
            ["schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociIndex), "manifests": [entry]],
            mediaType: ManifestMediaType.ociIndex)
        let first = try process()
        let answer = try await first.imageManifestResult(
            try ImageReference.parse("r.test/multi:v1"), platform: .linuxAMD64)
        #expect(registry.calls.count == 2)
        // The second process's lookup alone answers it: the batch would
        // report it at once, with no worker and no request.
        let second = try process()
        guard
            case .answer(let stored) = second.cachedImageManifest(
                try ImageReference.parse("r.test/multi:v1"), platform: .linuxAMD64)
        else {
            Issue.record("not answered from disk")
            return
        }
        #expect(stored == answer)
        #expect(registry.calls.count == 2)
    }
}
