import Foundation
import JSON
import Registry
import Testing
import TestFixtures

/// Manifests that Go's readers (the original builtins, the registry, the
/// runtime that pulls the image) read otherwise than a plain lookup of
/// their keys, through the binary: refused (`ambiguous_manifest` where Go
/// reads them, `invalid_manifest` where it refuses them too), never
/// answered as if a field were empty.
@Suite(.serialized, .needsDockerRegistry) struct ManifestsGoReadsOtherwiseTests {
    /// The text of an image manifest over one layer and a config, with
    /// `layers` and `config` written as the argument says.
    static func manifest(_ spelling: String, config: String, layer: (digest: String, size: Int)) -> String {
        let configDescriptor = #"{"mediaType":"\#(Expected.ociConfig)","size":2,"digest":"\#(config)"}"#
        let layerList = #"[{"mediaType":"\#(Expected.gzipLayer)","size":\#(layer.size),"digest":"\#(layer.digest)"}]"#
        let members: String
        switch spelling {
        case "config twice":
            // Go merges the two: the config is the first one's digest.
            members =
                #""config":\#(configDescriptor),"config":{"mediaType":"\#(Expected.ociConfig)"},"layers":\#(layerList)"#
        case let key:
            members = #""config":\#(configDescriptor),"\#(key)":\#(layerList)"#
        }
        return #"{"schemaVersion":2,"mediaType":"\#(Expected.oci)",\#(members)}"#
    }

    /// Distribution takes each of these (Go matches `Layers` to `layers`
    /// and merges a repeated `config`), and a runtime pulling the image
    /// unpacks its layer. Read with exact lookups they answered with no
    /// layers, or a config without a digest, and `image_files` found
    /// nothing in the image.
    @Test(arguments: ["layers", "Layers", "LAYERS", "config twice"])
    func aManifestTheRegistryReadsOtherwiseIsRefused(spelling: String) async throws {
        let rig = try await Rig.start()
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        let layer = Compressors.gzip(tar.archive)
        let layerDigest = try await rig.registry.pushBlob("app", Data(layer))
        let config = try await rig.registry.pushBlob("app", Data("{}".utf8))
        let text = Self.manifest(spelling, config: config, layer: (layerDigest, layer.count))
        let digest = try await rig.registry.pushManifest("app", "v1", Data(text.utf8), mediaType: Expected.oci)
        let ref = JSONValue.string(rig.ref("app", digest))

        let shaped = try await rig.session.call("ec.oci.image_manifest", [ref])
        let files = try await rig.session.call("ec.oci.image_files", [ref, ["etc"]])
        let byTag = try await rig.session.call("ec.oci.image_manifests", [[.string(rig.ref("app", "v1"))]])
        if spelling == "layers" {
            #expect(
                shaped["result"]?["layers"]?.arrayValue?.first?["digest"] == .string(layerDigest), "\(shaped.jsonText)")
            #expect(files["result"]?["etc/policy.yaml"] == ["allowed": false], "\(files.jsonText)")
            #expect(byTag["result"]?.objectValue?.count == 1)
        } else {
            let problem =
                spelling == "config twice"
                ? "config: given twice" : "the key \"\(spelling)\" is \"layers\" in other letters"
            // Go reads the manifest, and so the original answers: not
            // `invalid_manifest`, which a policy may take as absence.
            for answer in [shaped, files] {
                #expect(answer.errorReason == "ambiguous_manifest", "\(answer.jsonText)")
                #expect(answer.errorCode == -32006)
                #expect(answer["error"]?["message"]?.stringValue?.contains(problem) == true, "\(answer.jsonText)")
            }
            // The batch leaves a ref that fails out.
            #expect(byTag["result"] == [:], "\(byTag.jsonText)")
        }
        await rig.stop()
    }

    /// The text of an image manifest over an empty layer and a config,
    /// both pushed to `rig`'s registry.
    static func plainManifest(in rig: Rig) async throws -> String {
        let config = try await rig.registry.pushBlob("app", Data("{}".utf8))
        let layer = Compressors.gzip(TarBuilder().archive)
        let layerDigest = try await rig.registry.pushBlob("app", Data(layer))
        return Self.manifest("layers", config: config, layer: (layerDigest, layer.count))
    }

    /// Text that is not Unicode (a byte that is not UTF-8, an escaped
    /// surrogate alone) in a manifest the registry stores, and in a blob:
    /// Go's `encoding/json` reads each as U+FFFD, and so does the server.
    /// It refused both, an error where the original answers, and an error
    /// leaves a policy's `deny` rule undefined.
    @Test func textThatIsNotUnicodeIsReadAsGoReadsIt() async throws {
        let rig = try await Rig.start()
        let manifest = try await Self.plainManifest(in: rig)
        // The byte 0xFF, then an escaped surrogate alone.
        let bytes =
            Array(manifest.utf8.dropLast()) + Array(#","annotations":{"note":"a"#.utf8) + [0xFF]
            + Array(#"b\ud800c"}}"#.utf8)
        let digest = try await rig.registry.pushManifest("app", "v1", Data(bytes), mediaType: Expected.oci)
        let shaped = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("app", digest))])
        #expect(shaped["result"]?["annotations"] == ["note": "a\u{FFFD}b\u{FFFD}c"], "\(shaped.jsonText)")

        let blob = try await rig.registry.pushBlob(
            "app", Data(Array(#"{"k"#.utf8) + [0xFF] + Array(#"":"\udc00x"}"#.utf8)))
        let parsed = try await rig.session.call("ec.oci.parsed_blob", [.string(rig.ref("app", blob))])
        #expect(parsed["result"] == ["k\u{FFFD}": "\u{FFFD}x"], "\(parsed.jsonText)")
        await rig.stop()
    }

    /// Nesting as deep as Go's `encoding/json` reads (10,000 levels, the
    /// manifest's own included), in a field no answer uses: answered, as
    /// the original answers. Past 512 levels it was refused before, an
    /// error where the original answers. (The registry refuses a level
    /// more, as Go does; `theTapeReadsAsDeepAsGo` tests the bound.)
    @Test func nestingAsDeepAsGoReadsIsRead() async throws {
        let rig = try await Rig.start()
        let manifest = try await Self.plainManifest(in: rig)
        let nested = String(repeating: "[", count: 9_999) + String(repeating: "]", count: 9_999)
        let deep = String(manifest.dropLast()) + #","x-deep":\#(nested)}"#
        let digest = try await rig.registry.pushManifest("app", "v1", Data(deep.utf8), mediaType: Expected.oci)
        let shaped = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("app", digest))])
        #expect(shaped["result"]?["layers"]?.arrayValue?.count == 1, "\(shaped.jsonText.prefix(300))")
        await rig.stop()
    }

    typealias HostileRig = HostileRegistryTests.Rig

    /// Fields of other types than Go's, which no registry that reads what
    /// it stores would take, from a registry that does not: refused where
    /// they were shaped as empty (`"layers": {}` as no layers).
    @Test(arguments: [
        (#""layers":{"0":LAYER}"#, "layers: an object, where an array belongs"),
        (
            #""layers":[LAYER],"annotations":{"approved":true}"#,
            "annotations.approved: a boolean, where a string belongs"
        ),
        (#""layers":[LAYER],"schemaVersion":2.0"#, "schemaVersion: 2.0 is not a 64-bit integer"),
    ])
    func fieldsOfOtherTypesAreRefused(members: String, problem: String) async throws {
        let rig = try HostileRig()
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        let layer = Compressors.gzip(tar.archive)
        let layerDigest = rig.registry.blob("app", layer)
        let config = rig.registry.blob("app", Array("{}".utf8))
        let descriptor = #"{"mediaType":"\#(Expected.gzipLayer)","size":\#(layer.count),"digest":"\#(layerDigest)"}"#
        let text =
            #"{"mediaType":"\#(Expected.oci)","config":{"mediaType":"\#(Expected.ociConfig)","size":2,"digest":"\#(config)"},\#(members.replacingOccurrences(of: "LAYER", with: descriptor))}"#
        let digest = rig.registry.manifest("app", tag: "v1", Array(text.utf8))
        for answer in [
            try await rig.session.call("ec.oci.image_manifest", [rig.ref("app", digest)]),
            try await rig.session.call("ec.oci.image_files", [rig.ref("app", digest), ["etc"]]),
        ] {
            #expect(answer.errorReason == "invalid_manifest", "\(answer.jsonText)")
            #expect(answer["error"]?["message"]?.stringValue?.hasSuffix(problem) == true, "\(answer.jsonText)")
        }
        try await rig.expectStillServing()
        await rig.close()
    }

    /// An index entry, and a referrer, of other types than Go's.
    @Test func indexesAndReferrersOfOtherTypesAreRefused() async throws {
        let rig = try HostileRig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        let entry = #"{"mediaType":"\#(Expected.oci)","size":"400","digest":"\#(image)"}"#
        let index = rig.registry.manifest(
            "app", tag: "multi", mediaType: ManifestMediaType.ociIndex,
            Array(#"{"schemaVersion":2,"manifests":[\#(entry)]}"#.utf8))
        let shaped = try await rig.session.call("ec.oci.image_index", [rig.ref("app", index)])
        #expect(shaped.errorReason == "invalid_manifest", "\(shaped.jsonText)")
        #expect(
            shaped["error"]?["message"]?.stringValue?.hasSuffix("manifests[0].size: a string, where an integer belongs")
                == true)

        let referrer = #"{"mediaType":"\#(Expected.oci)","size":10,"digest":"\#(image)","annotations":{"n":1}}"#
        ReferrersPagesTests.serve(rig) { number in number == 1 ? ([referrer], []) : nil }
        let referrers = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(referrers.errorReason == "invalid_manifest", "\(referrers.jsonText)")
        #expect(
            referrers["error"]?["message"]?.stringValue?.hasSuffix(
                "manifests[0].annotations.n: a number, where a string belongs") == true)
        try await rig.expectStillServing()
        await rig.close()
    }

    /// Docker schema 1, served with its media type or, as a registry that
    /// does not set one may, as `application/json` (containers/image then
    /// tells it by its `schemaVersion`), or as an index's entry: refused,
    /// as the original refuses it. Read as an image manifest it listed no
    /// layers, and `image_files` found nothing, while runtimes that still
    /// pull schema 1 unpack its `fsLayers`.
    @Test(arguments: ["v1+json", "v1+prettyjws", "application/json", "an index's entry"])
    func aSchema1ManifestIsRefusedNotReadAsAnImageWithoutLayers(served: String) async throws {
        let rig = try HostileRig()
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        let layer = rig.registry.blob("app", Compressors.gzip(tar.archive))
        let text =
            #"{"schemaVersion":1,"name":"app","tag":"v1","architecture":"amd64","fsLayers":[{"blobSum":"\#(layer)"}],"history":[{"v1Compatibility":"{}"}],"signatures":[]}"#
        let schema1 = "application/vnd.docker.distribution.manifest."
        let mediaType =
            served == "application/json" ? served : schema1 + (served == "v1+json" ? "v1+json" : "v1+prettyjws")
        var digest = rig.registry.manifest("app", tag: "v1", mediaType: mediaType, Array(text.utf8))
        if served == "an index's entry" {
            let entry =
                #"{"mediaType":"\#(mediaType)","size":\#(text.utf8.count),"digest":"\#(digest)","platform":{"os":"linux","architecture":"amd64"}}"#
            digest = rig.registry.manifest(
                "app", tag: "v1", mediaType: ManifestMediaType.ociIndex,
                Array(#"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.ociIndex)","manifests":[\#(entry)]}"#.utf8)
            )
        }
        for answer in [
            try await rig.session.call("ec.oci.image_manifest", [.string("\(rig.registry.host)/app:v1")]),
            try await rig.session.call("ec.oci.image_files", [rig.ref("app", digest), ["etc"]]),
        ] {
            #expect(answer.errorReason == "unexpected_media_type", "\(answer.jsonText)")
            #expect(answer["error"]?["message"]?.stringValue?.contains("Docker schema 1") == true)
        }
        let batch = try await rig.session.call("ec.oci.image_manifests", [[rig.ref("app", digest)]])
        #expect(batch["result"] == [:], "\(batch.jsonText)")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// One document that is both an image manifest and an index
    /// (CVE-2021-41190): read by its `Content-Type`, which a registry may
    /// choose per request, it was image A to one reader and the index's
    /// image B to another. Refused, however it is served, as containerd
    /// refuses it; so is one that declares the other kind's media type. The
    /// original reads it as its `Content-Type` says, so the refusal is
    /// `ambiguous_manifest`, never `unexpected_media_type`, which a policy
    /// may let be undefined (it was).
    @Test(arguments: [
        ("both", ManifestMediaType.ociManifest), ("both", ManifestMediaType.ociIndex),
        ("both", "application/json"), ("declares an index", ManifestMediaType.ociManifest),
        ("index with a config", ManifestMediaType.ociIndex), ("as an index's entry", ManifestMediaType.ociIndex),
    ])
    func aDocumentThatIsBothKindsIsRefused(document: String, servedAs mediaType: String) async throws {
        let rig = try HostileRig()
        let imageB = rig.registry.image("app", layers: [])
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: true")
        let layerA = Compressors.gzip(tar.archive)
        let layerDigest = rig.registry.blob("app", layerA)
        let config = rig.registry.blob("app", Array("{}".utf8))
        let configJSON = #""config":{"mediaType":"\#(Expected.ociConfig)","size":2,"digest":"\#(config)"}"#
        let layersJSON =
            #""layers":[{"mediaType":"\#(Expected.gzipLayer)","size":\#(layerA.count),"digest":"\#(layerDigest)"}]"#
        let manifestsJSON =
            #""manifests":[{"mediaType":"\#(Expected.oci)","size":400,"digest":"\#(imageB)","platform":{"os":"linux","architecture":"amd64"}}]"#
        let text: String
        switch document {
        case "declares an index":
            text = #"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.ociIndex)",\#(configJSON),\#(layersJSON)}"#
        case "index with a config":
            text = #"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.ociIndex)",\#(configJSON),\#(manifestsJSON)}"#
        default:
            text = #"{"schemaVersion":2,\#(configJSON),\#(layersJSON),\#(manifestsJSON)}"#
        }
        var digest = rig.registry.manifest("app", tag: "v1", mediaType: mediaType, Array(text.utf8))
        if document == "as an index's entry" {
            digest = rig.registry.manifest("app", tag: "v1", mediaType: ManifestMediaType.ociManifest, Array(text.utf8))
            let entry =
                #"{"mediaType":"\#(Expected.oci)","size":\#(text.utf8.count),"digest":"\#(digest)","platform":{"os":"linux","architecture":"amd64"}}"#
            digest = rig.registry.manifest(
                "app", tag: "v1", mediaType: ManifestMediaType.ociIndex,
                Array(#"{"schemaVersion":2,"manifests":[\#(entry)]}"#.utf8))
        }
        var answers = [
            try await rig.session.call("ec.oci.image_manifest", [.string("\(rig.registry.host)/app:v1")]),
            try await rig.session.call("ec.oci.image_files", [rig.ref("app", digest), ["etc"]]),
        ]
        if document != "as an index's entry" {
            answers.append(try await rig.session.call("ec.oci.image_index", [rig.ref("app", digest)]))
        }
        for answer in answers {
            #expect(answer.errorReason == "ambiguous_manifest", "\(answer.jsonText)")
            #expect(answer.errorCode == -32006)
            #expect(answer["error"]?["message"]?.stringValue?.contains("but is also") == true, "\(answer.jsonText)")
        }
        try await rig.expectStillServing()
        await rig.close()
    }

    /// A layer whose files a reader other than Go's would place elsewhere
    /// or not see: a device whose size field claims the next block as its
    /// data (Go reads no data for a device: the block is the next header),
    /// a GNU long name after a PAX path (Go takes the long name), a global
    /// header between a PAX path and its entry (Go's entry is the global
    /// header's). Distribution stores it as it is; `image_files` and
    /// `blob_files` read the files Go and the runtimes unpack.
    @Test func aLayerIsReadAsGoReadsIt() async throws {
        let rig = try await Rig.start()
        var tar = TarBuilder()
        tar.header("dev/null", type: "3", declaredSize: 512)
        tar.file("etc/device.yaml", "hidden: false")
        tar.paxHeader(TarBuilder.paxRecord("path", "etc/benign.txt"))
        tar.gnuLongName("etc/long.yaml")
        tar.file("short", "named: long")
        tar.paxHeader(TarBuilder.paxRecord("path", "etc/path.txt"))
        tar.paxHeader(TarBuilder.paxRecord("comment", "global"), global: true)
        tar.file("etc/global.yaml", "named: own")
        let layer = Compressors.gzip(tar.archive)
        let pushed = try await rig.registry.pushImage("app", "v1", layers: [(layer, Expected.gzipLayer)])
        let files = try await rig.session.result(
            "ec.oci.image_files", [.string(rig.ref("app", pushed.digest)), ["etc"]])
        #expect(
            files == [
                "etc/device.yaml": ["hidden": false], "etc/global.yaml": ["named": "own"],
                "etc/long.yaml": ["named": "long"],
            ],
            "\(files.jsonText)")
        let blob = rig.ref("app", Digest.of(layer).description)
        let exact = try await rig.session.result(
            "ec.oci.blob_files", [.string(blob), ["etc/device.yaml", "etc/long.yaml", "etc/global.yaml", "short"]])
        #expect(
            exact.objectValue?.keys.sorted() == ["etc/device.yaml", "etc/global.yaml", "etc/long.yaml"],
            "\(exact.jsonText)")
        await rig.stop()
    }

    /// Links in a pushed image, read as the container reads them: a
    /// wanted symbolic link to a file in a lower layer, a hard link to a
    /// file its layer replaces after it, a wanted directory that is a
    /// symbolic link (a merged /usr's `lib`). Left out, each would read as
    /// "no such file" where the container shows one. A hard link to
    /// nothing fails the call: the image cannot be unpacked.
    @Test func linksShowTheFilesTheyLeadTo() async throws {
        let rig = try await Rig.start()
        var bottom = TarBuilder()
        bottom.file("usr/lib/policy/rules.yaml", "allowed: false")
        bottom.symlink("lib", to: "usr/lib")
        bottom.file("usr/share/real.json", #"{"source":"lower"}"#)
        var top = TarBuilder()
        top.symlink("etc/config.yaml", to: "../usr/share/real.json")
        top.file("usr/share/data.txt", "version: 1")
        top.hardlink("etc/pinned.yaml", to: "usr/share/data.txt")
        top.file("usr/share/data.txt", "version: 2")
        let pushed = try await rig.registry.pushImage(
            "app", "v1",
            layers: [
                (Compressors.gzip(bottom.archive), Expected.gzipLayer),
                (Compressors.gzip(top.archive), Expected.gzipLayer),
            ])
        let files = try await rig.session.result(
            "ec.oci.image_files", [.string(rig.ref("app", pushed.digest)), ["etc", "lib/policy"]])
        #expect(
            files.jsonText
                == #"{"etc/config.yaml":{"source":"lower"},"etc/pinned.yaml":{"version":1},"lib/policy/rules.yaml":{"allowed":false}}"#,
            "\(files.jsonText)")

        // The top layer alone, as a blob: the hard link is read; the
        // symbolic link leads outside it, to nothing, and is left out.
        let topLayer = rig.ref("app", Digest.of(Compressors.gzip(top.archive)).description)
        let exact = try await rig.session.result(
            "ec.oci.blob_files", [.string(topLayer), ["etc/config.yaml", "etc/pinned.yaml"]])
        #expect(exact.jsonText == #"{"etc/pinned.yaml":{"version":1}}"#, "\(exact.jsonText)")

        var broken = TarBuilder()
        broken.hardlink("etc/policy.yaml", to: "usr/missing.yaml")
        let brokenImage = try await rig.registry.pushImage(
            "app", "broken", layers: [(Compressors.gzip(broken.archive), Expected.gzipLayer)])
        let refused = try await rig.session.call(
            "ec.oci.image_files", [.string(rig.ref("app", brokenImage.digest)), ["etc"]])
        #expect(refused.errorReason == "corrupt_archive", "\(refused.jsonText)")
        await rig.stop()
    }

    /// A file libyaml and go-yaml read differently (a `:` right before `,`
    /// in a flow collection: go-yaml reads the scalar `1e:`, libyaml stops
    /// at the colon) fails the call as `ambiguous_yaml`: left out, it would
    /// read as absent where the original reads a value. A file both read
    /// alike, beside it in another call, is read.
    @Test func aFileTheYAMLReadersReadDifferentlyFailsTheCall() async throws {
        let rig = try await Rig.start()
        var tar = TarBuilder()
        tar.file("etc/ambiguous.yaml", "values: [1e:, 2]\n")
        tar.file("etc/plain.yaml", "values: [1, 2]\n")
        let blob = try await rig.registry.pushBlob("app", Data(tar.archive))
        let ref = JSONValue.string(rig.ref("app", blob))
        let refused = try await rig.session.call("ec.oci.blob_files", [ref, ["etc/ambiguous.yaml", "etc/plain.yaml"]])
        #expect(refused.errorReason == "ambiguous_yaml", "\(refused.jsonText)")
        #expect(refused.errorCode == -32006)
        let read = try await rig.session.result("ec.oci.blob_files", [ref, ["etc/plain.yaml"]])
        #expect(read == ["etc/plain.yaml": ["values": [1, 2]]], "\(read.jsonText)")
        await rig.stop()
    }
}
