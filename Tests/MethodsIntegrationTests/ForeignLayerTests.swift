import Foundation
import JSON
import Registry
import Testing
import TestFixtures

/// Layers and configs the registry does not hold, and bytes a descriptor
/// embeds. A foreign layer's descriptor names URLs, and a registry may
/// take it without holding the layer (distribution does when its URL
/// validation allows them): the original builtins read it from the
/// registry first and then from its URLs, and runtimes pull it from there;
/// the server reads it from the registry only. Bytes a descriptor embeds
/// (`data`) both read before asking the registry.
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
    /// and a config (`{}` unless given, embedded as `configData` when
    /// given), pushed under `tag`.
    static func push(
        _ registry: TestRegistry, _ tag: String, layer: (digest: String, size: Int), urls: [String],
        data: [UInt8]? = nil, config: [UInt8] = Array("{}".utf8), configData: [UInt8]? = nil
    ) async throws -> String {
        let configDigest = try await registry.pushBlob("app", Data(config))
        var urlList = urls.isEmpty ? "" : #","urls":["\#(urls.joined(separator: #"",""#))"]"#
        if let data { urlList += #","data":"\#(Data(data).base64EncodedString())""# }
        let embeddedConfig = configData.map { #","data":"\#(Data($0).base64EncodedString())""# } ?? ""
        let text =
            #"{"schemaVersion":2,"mediaType":"\#(Expected.oci)","config":{"mediaType":"\#(Expected.ociConfig)","size":\#(config.count),"digest":"\#(configDigest)"\#(embeddedConfig)},"layers":[{"mediaType":"\#(Expected.gzipLayer)","size":\#(layer.size),"digest":"\#(layer.digest)"\#(urlList)}]}"#
        return try await registry.pushManifest("app", tag, Data(text.utf8), mediaType: Expected.oci)
    }

    /// A config whose `diff_ids` name `tar`, the one layer it describes.
    static func config(of tar: [UInt8]) -> [UInt8] {
        Array(#"{"rootfs":{"type":"layers","diff_ids":["\#(Digest.of(tar))"]}}"#.utf8)
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

    /// Bytes a layer's descriptor embeds are read before the registry is
    /// asked, as the original reads them (go-containerregistry's
    /// `remoteImageLayer.Compressed`): a layer the registry holds is not
    /// downloaded, and embedded bytes that are not the layer are
    /// `digest_mismatch` even where the registry holds the right ones (the
    /// original fails there too). They were read only after a 404.
    @Test func anEmbeddedLayerIsReadBeforeTheRegistryIsAsked() async throws {
        let (rig, layer) = try await Self.start()
        let registry = rig.registry
        let digest = try await registry.pushBlob("app", Data(layer))
        let embedded = try await Self.push(registry, "embedded", layer: (digest, layer.count), urls: [], data: layer)
        var other = layer
        other[other.count - 1] ^= 1
        let wrong = try await Self.push(registry, "wrong", layer: (digest, layer.count), urls: [], data: other)

        let files = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", embedded)), ["etc"]])
        #expect(files["result"] == ["etc/policy.yaml": ["allowed": false]], "\(files.jsonText)")
        let stats = try await rig.session.result("server.stats", [])
        // The config alone.
        #expect(stats["registryRequests"]?["blob"] == 1, "\(stats.jsonText)")
        let refused = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", wrong)), ["etc"]])
        #expect(refused.errorReason == "digest_mismatch", "\(refused.jsonText)")
        #expect(refused.errorCode == -32003)
        await rig.stop()
    }

    /// `image_files` checks each layer against its config's `diff_ids`, as
    /// runtimes do; the original never reads the config. A config its
    /// descriptor embeds is read from there (checked by digest). One the
    /// registry does not hold and nothing embeds is `missing_config`, never
    /// the registry's `blob_unknown` (which it was): a policy may take that
    /// for absence, and the original lists the image's files.
    @Test func aConfigTheRegistryDoesNotHoldIsReadWhereEmbeddedAndRefusedOtherwise() async throws {
        let (rig, layer) = try await Self.start()
        let registry = rig.registry
        let digest = try await registry.pushBlob("app", Data(layer))
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        let config = Self.config(of: tar.archive)
        let embedded = try await Self.push(
            registry, "embedded", layer: (digest, layer.count), urls: [], config: config, configData: config)
        let missing = try await Self.push(
            registry, "missing", layer: (digest, layer.count), urls: [], config: config + [0x20])
        var other = config
        other[other.count - 2] = 0x20
        let wrong = try await Self.push(
            registry, "wrong", layer: (digest, layer.count), urls: [], config: Array(config) + [0x0a],
            configData: Array(other) + [0x0a])
        for image in [embedded, missing, wrong] {
            let manifest = try await rig.session.result("ec.oci.image_manifest", [.string(rig.ref("app", image))])
            let configDigest = try #require(manifest["config"]?["digest"]?.stringValue)
            try await registry.deleteBlob("app", configDigest)
        }

        let files = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", embedded)), ["etc"]])
        #expect(files["result"] == ["etc/policy.yaml": ["allowed": false]], "\(files.jsonText)")
        let refused = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", missing)), ["etc"]])
        #expect(refused.errorCode == -32006, "\(refused.jsonText)")
        #expect(refused.errorReason == "missing_config")
        let mismatch = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("app", wrong)), ["etc"]])
        #expect(mismatch.errorReason == "digest_mismatch", "\(mismatch.jsonText)")
        #expect(mismatch.errorCode == -32003)
        await rig.stop()
    }
}
