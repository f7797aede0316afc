import Foundation
import JSON
import Registry
import Testing
import TestFixtures

/// Layers the registry does not hold. A foreign layer's descriptor names
/// URLs, and a registry may take it without holding the layer
/// (distribution does when its URL validation allows them): the original
/// builtins read it from the registry first and then from its URLs, and
/// runtimes pull it from there; the server reads it from the registry
/// only. Any other layer the registry lacks is simply not there.
@Suite(.needsDockerRegistry) struct ForeignLayerTests {
    /// A registry that takes foreign layers, a server, and a layer (not
    /// pushed) holding `etc/policy.yaml`.
    static func start() async throws -> (Rig, layer: [UInt8]) {
        let registry = try await TestRegistry(allowingForeignLayers: true)
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        return (
            Rig(registry: registry, session: try RPCSession(["--log-level", "warn"])), Compressors.gzip(tar.archive)
        )
    }

    /// An image manifest over one layer (with `urls` and `data` when given)
    /// and an empty config, pushed under `tag`.
    static func push(
        _ registry: TestRegistry, _ tag: String, layer: (digest: String, size: Int), urls: [String],
        data: [UInt8]? = nil
    ) async throws -> String {
        let config = try await registry.pushBlob("app", Data("{}".utf8))
        var urlList = urls.isEmpty ? "" : #","urls":["\#(urls.joined(separator: #"",""#))"]"#
        if let data { urlList += #","data":"\#(Data(data).base64EncodedString())""# }
        let text =
            #"{"schemaVersion":2,"mediaType":"\#(Expected.oci)","config":{"mediaType":"\#(Expected.ociConfig)","size":2,"digest":"\#(config)"},"layers":[{"mediaType":"\#(Expected.gzipLayer)","size":\#(layer.size),"digest":"\#(layer.digest)"\#(urlList)}]}"#
        return try await registry.pushManifest("app", tag, Data(text.utf8), mediaType: Expected.oci)
    }

    /// A foreign layer the registry does not hold is refused as what it
    /// is, never as `blob_unknown`, the registry's word that it is not
    /// there, which a policy may take as absence: the files the image runs
    /// with would pass every rule over them. One the registry holds is read
    /// from it, as the original reads it first.
    @Test func aForeignLayerTheRegistryDoesNotHoldIsRefusedNotTakenForAbsent() async throws {
        let (rig, layer) = try await Self.start()
        let registry = rig.registry
        let held = try await registry.pushBlob("app", Data(layer))
        let elsewhere = ["https://layers.example.com/\(held)"]
        let heldImage = try await Self.push(registry, "held", layer: (held, layer.count), urls: elsewhere)
        let missing = "sha256:" + String(repeating: "a", count: 64)
        // Foreign layers are large (a Windows base layer is GBs): declared
        // larger than the registry's 404, whose body was read and its
        // BLOB_UNKNOWN taken for the registry's word.
        let foreignImage = try await Self.push(registry, "foreign", layer: (missing, 1 << 20), urls: elsewhere)

        let files = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", heldImage)), ["etc"]])
        #expect(files["result"] == ["etc/policy.yaml": ["allowed": false]], "\(files.jsonText)")
        let refused = try await rig.session.call(
            "ec.oci.image_files", [.string(rig.ref("app", foreignImage)), ["etc"]])
        #expect(refused.errorCode == -32006, "\(refused.jsonText)")
        #expect(refused.errorReason == "foreign_layer")
        #expect(refused["error"]?["message"]?.stringValue?.contains(missing) == true, "\(refused.jsonText)")
        // The manifest itself is answered, its layer's URLs as given.
        let manifest = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("app", foreignImage))])
        #expect(
            manifest["result"]?["layers"]?.arrayValue?.first?["urls"]
                == JSONValue.array(elsewhere.map { JSONValue.string($0) }),
            "\(manifest.jsonText)")
        await rig.stop()
    }

    /// A layer the registry does not hold whose descriptor embeds it
    /// (`data`) is read from there, as the original reads it; embedded
    /// bytes that are not the layer's digest are `digest_mismatch`.
    @Test func aLayerItsDescriptorEmbedsIsReadFromThere() async throws {
        let (rig, layer) = try await Self.start()
        let registry = rig.registry
        let digest = Digest.of(layer).description
        let elsewhere = ["https://layers.example.com/\(digest)"]
        let embedded = try await Self.push(
            registry, "embedded", layer: (digest, layer.count), urls: elsewhere, data: layer)
        var other = layer
        other[other.count - 1] ^= 1
        let wrong = try await Self.push(
            registry, "wrong", layer: (digest, layer.count), urls: elsewhere, data: other)
        #expect(!registry.stores(digest))

        let files = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", embedded)), ["etc"]])
        #expect(files["result"] == ["etc/policy.yaml": ["allowed": false]], "\(files.jsonText)")
        let refused = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", wrong)), ["etc"]])
        #expect(refused.errorReason == "digest_mismatch", "\(refused.jsonText)")
        #expect(refused.errorCode == -32003)
        await rig.stop()
    }

    /// A layer without URLs that the registry no longer holds is the
    /// registry's word, `blob_unknown`, as the original hears it; its 404's
    /// own body, longer than the small layer the manifest declares, is no
    /// reason to call it `blob_too_large` (which it was).
    @Test func aLayerTheRegistryNoLongerHoldsIsBlobUnknownWhateverItsDeclaredSize() async throws {
        let registry = try await TestRegistry()
        let rig = Rig(registry: registry, session: try RPCSession(["--log-level", "warn"]))
        let layer = Compressors.gzip(TarBuilder().archive)
        let digest = try await registry.pushBlob("app", Data(layer))
        let image = try await Self.push(registry, "gone", layer: (digest, layer.count), urls: [])
        try await registry.deleteBlob("app", digest)
        let answer = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", image)), ["etc"]])
        #expect(answer.errorCode == -32001, "\(answer.jsonText)")
        #expect(answer.errorReason == "blob_unknown")
        await rig.stop()
    }
}
