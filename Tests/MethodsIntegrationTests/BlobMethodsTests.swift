import Foundation
import JSON
import Registry
import Testing
import TestFixtures

@Suite(.serialized, .needsDockerRegistry) struct BlobMethodsTests {
    @Test func blobReturnsTextAndDecompressesAfterVerifying() async throws {
        let rig = try await Rig.start()
        let text = "hello, policy\n"
        let plain = try await rig.registry.pushBlob("blobs", Data(text.utf8))
        let gzipped = try await rig.registry.pushBlob("blobs", Data(Compressors.gzip(Array(text.utf8))))
        let zstd = try await rig.registry.pushBlob("blobs", Data(Compressors.zstd(Array(text.utf8))))
        for digest in [plain, gzipped, zstd] {
            #expect(try await rig.session.result("ec.oci.blob", [.string(rig.ref("blobs", digest))]) == .string(text))
        }
        let binary: [UInt8] = [0xFF, 0xFE, 0x00, 0x80]
        let binaryDigest = try await rig.registry.pushBlob("blobs", Data(binary))
        let refused = try await rig.session.call("ec.oci.blob", [.string(rig.ref("blobs", binaryDigest))])
        #expect(refused.errorCode == -32006)
        #expect(refused.errorReason == "binary_content")
        let base64 = try await rig.session.result(
            "ec.oci.blob", ["ref": .string(rig.ref("blobs", binaryDigest)), "encoding": "base64"])
        #expect(base64 == .string(Data(binary).base64EncodedString()))
        let tagged = try await rig.session.call("ec.oci.blob", [.string(rig.ref("blobs", "latest"))])
        #expect(tagged.errorReason == "digest_required")
        let missing = try await rig.session.call(
            "ec.oci.blob", [.string(rig.ref("blobs", Digest.of(Array("nope".utf8)).description))])
        #expect(missing.errorCode == -32001)
        #expect(missing.errorReason == "blob_unknown")
        await rig.stop()
    }

    @Test func parsedBlobKeepsNumberTextExactly() async throws {
        let rig = try await Rig.start()
        let json = #"{"big":12345678901234567890,"ratio":1.10,"list":[1e2,-0]}"#
        let digest = try await rig.registry.pushBlob("parsed", Data(json.utf8))
        let result = try await rig.session.result("ec.oci.parsed_blob", [.string(rig.ref("parsed", digest))])
        #expect(
            result == [
                "big": .number("12345678901234567890"), "ratio": .number("1.10"),
                "list": [.number("1e2"), .number("-0")],
            ])
        #expect(result.jsonText == json)
        let notJSON = try await rig.registry.pushBlob("parsed", Data("key: value".utf8))
        let refused = try await rig.session.call("ec.oci.parsed_blob", [.string(rig.ref("parsed", notJSON))])
        #expect(refused.errorCode == -32006)
        #expect(refused.errorReason == "not_json")
        await rig.stop()
    }

    @Test func blobFilesReadsExactNamesAndSkipsWhatDoesNotParse() async throws {
        let rig = try await Rig.start()
        var tar = TarBuilder()
        tar.file("policy.yaml", "rules:\n  - name: no-root\n    enabled: yes\n")
        tar.file("data/config.json", #"{"threshold": 0.5}"#)
        tar.file("data/other.json", #"{"ignored": true}"#)
        tar.file("broken.yaml", "a: [unclosed")
        tar.file("notes.txt", "count: 3")
        let digest = try await rig.registry.pushBlob("bundles", Data(Compressors.gzip(tar.archive)))
        let ref = rig.ref("bundles", digest)
        let result = try await rig.session.result(
            "ec.oci.blob_files",
            [.string(ref), ["policy.yaml", "data/config.json", "broken.yaml", "notes.txt", "absent.yaml"]])
        #expect(
            result == [
                "policy.yaml": ["rules": [["name": "no-root", "enabled": true]]],
                "data/config.json": ["threshold": .number("0.5")],
                "notes.txt": ["count": 3],
            ])
        #expect(try await rig.session.result("ec.oci.blob_files", ["ref": .string(ref), "paths": []]) == [:])
        let badPaths = try await rig.session.call("ec.oci.blob_files", [.string(ref), ["ok", 7]])
        #expect(badPaths.errorCode == -32602)
        #expect(badPaths.errorReason == "invalid_paths")
        let notArray = try await rig.session.call("ec.oci.blob_files", [.string(ref), "policy.yaml"])
        #expect(notArray.errorReason == "invalid_paths")
        await rig.stop()
    }

    @Test func imageFilesReadsTheFlattenedFilesystem() async throws {
        let rig = try await Rig.start()
        var base = TarBuilder()
        base.file("etc/policy/keep.yaml", "layer: 1")
        base.file("etc/policy/replaced.yaml", "layer: 1")
        base.file("etc/policy/removed.json", #"{"layer": 1}"#)
        base.file("etc/opaque/old.yaml", "layer: 1")
        base.file("etc/policy/deeper/skip.yaml", "layer: 1")
        var middle = TarBuilder()
        middle.file("etc/policy/.wh.removed.json", "")
        middle.file("etc/opaque/.wh..wh..opq", "")
        middle.file("etc/opaque/new.yml", "layer: 2")
        middle.file("etc/policy/readme.md", "layer: 2")
        var top = TarBuilder()
        top.file("./etc/policy/replaced.yaml", "layer: 3")
        top.file("ETC/Policy/Upper.JSON", #"{"layer": 3}"#)
        let image = try await rig.registry.pushImage(
            "files", "v1",
            layers: [
                (Compressors.gzip(base.archive), Expected.gzipLayer),
                (Compressors.zstd(middle.archive), "application/vnd.oci.image.layer.v1.tar+zstd"),
                (top.archive, "application/vnd.oci.image.layer.v1.tar"),
            ])
        let result = try await rig.session.result(
            "ec.oci.image_files", [.string(rig.ref("files", image.digest)), ["etc/policy", "/etc/opaque/"]])
        #expect(
            result.objectValue.map { Set($0.keys) } == [
                "etc/policy/keep.yaml", "etc/policy/replaced.yaml", "etc/opaque/new.yml", "ETC/Policy/Upper.JSON",
            ])
        #expect(result["etc/policy/keep.yaml"] == ["layer": 1])
        #expect(result["etc/policy/replaced.yaml"] == ["layer": 3])
        #expect(result["etc/opaque/new.yml"] == ["layer": 2])
        #expect(result["ETC/Policy/Upper.JSON"] == ["layer": 3])
        let byTag = try await rig.session.call("ec.oci.image_files", [.string(rig.ref("files", "v1")), ["etc"]])
        #expect(byTag.errorReason == "digest_required")
        await rig.stop()
    }
}
