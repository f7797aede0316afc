import Foundation
import Testing
@testable import Registry

@Suite(.serialized) struct ManifestHeadAgainstARealRegistry {
    @Test func headDescribesImagesByTagAndDigest() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let manifest = Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"\#(try await registry.pushBlob("app", Data("{}".utf8)))"},"layers":[]}"#.utf8)
        let digest = try await registry.pushManifest("app", "v1", manifest, mediaType: ManifestMediaType.ociManifest)
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        let expected = ManifestHead(mediaType: ManifestMediaType.ociManifest, size: manifest.count, digest: Digest(digest)!)
        #expect(try await client.headManifest(try ImageReference.parse("\(registry.host)/app:v1")) == expected)
        #expect(try await client.headManifest(try ImageReference.parse("\(registry.host)/app@\(digest)")) == expected)
        #expect(try await client.manifestExists(try ImageReference.parse("\(registry.host)/app:v1")))
        #expect(try await !client.manifestExists(try ImageReference.parse("\(registry.host)/app:sha256-abc.sig")))
        #expect(client.counters.snapshot["manifest"] == 4)
    }
}
