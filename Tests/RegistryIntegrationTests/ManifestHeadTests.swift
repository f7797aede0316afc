import TestFixtures
import Foundation
import Testing
@testable import Registry

@Suite(.serialized, .needsDockerRegistry) struct ManifestHeadAgainstARealRegistry {
    @Test func headDescribesImagesByTagAndDigest() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let (manifest, digest) = try await registry.pushMinimalImage("app", "v1")
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        let expected = ManifestHead(
            mediaType: ManifestMediaType.ociManifest, size: manifest.count, digest: Digest(digest)!)
        #expect(try await client.headManifest(try ImageReference.parse("\(registry.host)/app:v1")) == expected)
        #expect(try await client.headManifest(try ImageReference.parse("\(registry.host)/app@\(digest)")) == expected)
        #expect(try await client.manifestExists(try ImageReference.parse("\(registry.host)/app:v1")))
        #expect(try await !client.manifestExists(try ImageReference.parse("\(registry.host)/app:sha256-abc.sig")))
        #expect(client.counters.snapshot["manifest"] == 4)
    }
}
