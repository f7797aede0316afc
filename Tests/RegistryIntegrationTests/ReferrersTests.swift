import TestFixtures
import Foundation
import JSON
import Testing
@testable import Registry

@Suite(.serialized, .needsDockerRegistry) struct ReferrersAgainstARealRegistry {
    @Test func fallsBackToTheTagSchemaWhenTheAPIIsMissing() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let subjectDigest = try await registry.pushMinimalImage("app", "v1").digest
        // The registry checks that an index's children exist: push one.
        let (signature, signatureDigest) = try await registry.pushMinimalImage(
            "app", "sig", annotations: #"{"sig":"1"}"#)
        let referrer =
            #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":\#(signature.count),"digest":"\#(signatureDigest)","artifactType":"application/vnd.dev.sigstore.bundle+json","annotations":{"k":"v"}}"#
        let index = Data(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(referrer)]}"#
                .utf8)
        let hex = String(subjectDigest.dropFirst("sha256:".count))
        try await registry.pushManifest("app", "sha256-\(hex)", index, mediaType: ManifestMediaType.ociIndex)

        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        let referrers = try await client.fetchReferrers(
            try ImageReference.parse("\(registry.host)/app@\(subjectDigest)"))
        #expect(referrers?.pages.map(\.bytes) == [Array(index)])
        #expect(
            try JSONParser.parse(referrers?.pages.first?.bytes ?? [])["manifests"] == [try JSONParser.parse(referrer)])
        // distribution 2.8 has no referrers API: one try, then the tag.
        #expect(client.counters.snapshot["referrers"] == 1)
        #expect(client.counters.snapshot["manifest"] == 1)
    }

    @Test func noReferrersIsAnEmptyList() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let subjectDigest = try await registry.pushMinimalImage("app", "v1").digest
        let client = RegistryClient(configuration: RegistryClient.Configuration(), logger: .disabled)
        #expect(
            try await client.fetchReferrers(try ImageReference.parse("\(registry.host)/app@\(subjectDigest)")) == nil)
    }
}
