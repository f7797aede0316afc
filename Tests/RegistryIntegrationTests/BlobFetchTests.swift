import Reasons
import TestFixtures
import Foundation
import Testing
@testable import Registry

@Suite(.serialized, .needsDockerRegistry) struct BlobFetchAgainstARealRegistry {
    @Test func blobIsStreamedToAFileAndVerified() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        // Large enough to span many reads.
        let bytes = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        let digest = try await registry.pushBlob("app", bytes)
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        let blob = try await client.fetchBlob(try ImageReference.parse("\(registry.host)/app@\(digest)"))
        defer { blob.discard() }
        #expect(blob.size == bytes.count)
        #expect(blob.digest.description == digest)
        #expect(try blob.contents() == bytes)
        #expect(client.counters.snapshot["blob"] == 1)
    }

    @Test func anEmptyBlobIsAnEmptyVerifiedFile() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let digest = try await registry.pushBlob("app", Data())
        #expect(digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        let blob = try await client.fetchBlob(try ImageReference.parse("\(registry.host)/app@\(digest)"))
        defer { blob.discard() }
        #expect(blob.size == 0)
        #expect(try blob.contents().isEmpty)
    }

    @Test func blobsAreBehindBasicAuthToo() async throws {
        let registry = try await TestRegistry(auth: .basic(user: "u", password: "p4ss"))
        defer { registry.stop() }
        let digest = try await registry.pushBlob("private/app", Data("hello".utf8))
        let dir = try DockerConfigDirectory.make(host: registry.host, user: "u", password: "p4ss")
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = RegistryClient.Configuration()
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path])
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        let blob = try await client.fetchBlob(try ImageReference.parse("\(registry.host)/private/app@\(digest)"))
        defer { blob.discard() }
        #expect(try blob.contents() == Data("hello".utf8))
    }

    @Test func missingBlobIsBlobUnknown() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await registry.pushBlob("app", Data("x".utf8))
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        let missing = Digest.of(Array("not pushed".utf8))
        do {
            _ = try await client.fetchBlob(try ImageReference.parse("\(registry.host)/app@\(missing)"))
            Issue.record("fetched a missing blob")
        } catch let error as RegistryError {
            #expect(error.kind == .notFound)
            #expect(error.reason == .blobUnknown)
        }
    }

    @Test func tagReferenceIsRefused() async throws {
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        do {
            _ = try await client.fetchBlob(try ImageReference.parse("127.0.0.1:1/app:v1"))
            Issue.record("accepted a tag")
        } catch let error as RegistryError {
            #expect(error.reason == .digestRequired)
        }
    }
}
