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
        // A repeated key once, with its last value, as Go reads it: written
        // twice, a client keeping the first would read `true`.
        let repeated = try await rig.registry.pushBlob(
            "parsed", Data(#"{"allow":true,"n":{"k":1,"k":2},"\u0061llow":false}"#.utf8))
        let once = try await rig.session.result("ec.oci.parsed_blob", [.string(rig.ref("parsed", repeated))])
        #expect(once.jsonText == #"{"allow":false,"n":{"k":2}}"#)
        let notJSON = try await rig.registry.pushBlob("parsed", Data("key: value".utf8))
        let refused = try await rig.session.call("ec.oci.parsed_blob", [.string(rig.ref("parsed", notJSON))])
        #expect(refused.errorCode == -32006)
        #expect(refused.errorReason == "not_json")
        await rig.stop()
    }

    /// The original reads a blob nested as deep as Go's `encoding/json`
    /// reads (10,000 levels); the server answers 512 at most, and past
    /// that gives its own limit, never `not_json`, the original's answer
    /// to a blob it cannot read either (a policy that lets that be
    /// undefined would pass a blob made to be refused).
    @Test func aBlobNestedPastTheServersDepthButAsDeepAsGoReadsIsALimitNotNotJSON() async throws {
        let rig = try await Rig.start()
        func nested(_ depth: Int, _ tail: String = "") -> Data {
            Data(
                (#"{"a":"# + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1)
                    + tail + "}").utf8)
        }
        func answer(_ blob: Data) async throws -> JSONValue {
            let digest = try await rig.registry.pushBlob("parsed", blob)
            return try await rig.session.call("ec.oci.parsed_blob", [.string(rig.ref("parsed", digest))])
        }
        let deepest = try await answer(nested(512))
        #expect(deepest.errorCode == nil)
        #expect(deepest["result"]?.jsonText == String(decoding: nested(512), as: UTF8.self))
        let past = try await answer(nested(513))
        #expect(past.errorCode == -32005)
        #expect(past.errorReason == "json_too_deep")
        #expect(try await answer(nested(10_000)).errorReason == "json_too_deep")
        // Deeper than Go reads, or not JSON past the depth: the original
        // cannot read it either.
        #expect(try await answer(nested(10_001)).errorReason == "not_json")
        #expect(try await answer(nested(513, ",")).errorReason == "not_json")
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
        // Keys sorted, as Go writes a map.
        #expect(
            result == [
                "data/config.json": ["threshold": .number("0.5")],
                "notes.txt": ["count": 3],
                "policy.yaml": ["rules": [["name": "no-root", "enabled": true]]],
            ])
        #expect(try await rig.session.result("ec.oci.blob_files", ["ref": .string(ref), "paths": []]) == [:])
        let badPaths = try await rig.session.call("ec.oci.blob_files", [.string(ref), ["ok", 7]])
        #expect(badPaths.errorCode == -32602)
        #expect(badPaths.errorReason == "invalid_paths")
        let notArray = try await rig.session.call("ec.oci.blob_files", [.string(ref), "policy.yaml"])
        #expect(notArray.errorReason == "invalid_paths")
        await rig.stop()
    }

    @Test func aLayersCompressionIsToldAsTheRuntimesTellIt() async throws {
        let rig = try await Rig.start()
        var tar = TarBuilder()
        tar.file("policy.yaml", "allow: true\n")
        let zstd = "application/vnd.oci.image.layer.v1.tar+zstd"
        // A member whose header sets a flag bit the format reserves: Go's
        // reader (the original's, containerd's) reads past it, zlib refused it.
        var flagged = Compressors.gzip(tar.archive)
        flagged[3] |= 0x20
        let read = try await rig.registry.pushImage("compression", "flagged", layers: [(flagged, Expected.gzipLayer)])
        #expect(
            try await rig.session.result("ec.oci.image_files", [.string(rig.ref("compression", read.digest)), ["."]])
                == ["policy.yaml": ["allow": true]])
        // Streams that containerd decompresses and containers/storage
        // unpacks as they are, or the other way round: refused.
        let skippable: [UInt8] = [0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 0, 0]
        for (tag, layer) in [
            ("skippable", skippable + Compressors.zstd(tar.archive)),
            ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00] + tar.archive),
        ] {
            let image = try await rig.registry.pushImage("compression", tag, layers: [(layer, zstd)])
            let files = try await rig.session.call(
                "ec.oci.image_files", [.string(rig.ref("compression", image.digest)), ["."]])
            #expect(files.errorReason == "corrupt_archive", "\(tag)")
            #expect(
                files["error"]?["message"]?.stringValue?.contains("each would unpack other files") == true, "\(tag)")
            let layerRef = rig.ref("compression", try await rig.registry.pushBlob("compression", Data(layer)))
            let blobFiles = try await rig.session.call("ec.oci.blob_files", [.string(layerRef), ["policy.yaml"]])
            #expect(blobFiles.errorReason == "corrupt_archive", "\(tag)")
            // A blob read whole is read as the original reads it: as it is.
            let whole = try await rig.session.result("ec.oci.blob", ["ref": .string(layerRef), "encoding": "base64"])
            #expect(whole.stringValue.flatMap { Data(base64Encoded: $0) } == Data(layer), "\(tag)")
        }
        await rig.stop()
    }

    @Test func aLayerIsCheckedAgainstWhatItsConfigSaysItHolds() async throws {
        // containerd unpacks a layer only if its decompressed bytes are the
        // config's diff_id, and on a node that already holds a layer of that
        // digest it runs that one without unpacking this: an image showing
        // one archive while its config names another's digest is refused.
        let rig = try await Rig.start()
        var shown = TarBuilder()
        shown.file("policy.yaml", "allow: true\n")
        var run = TarBuilder()
        run.file("policy.yaml", "allow: false\n")
        func config(_ diffIDs: [[UInt8]], key: String = "rootfs") -> String {
            let listed = diffIDs.map { "\"\(Digest.of($0))\"" }.joined(separator: ",")
            return #"{"architecture":"amd64","os":"linux","\#(key)":{"type":"layers","diff_ids":[\#(listed)]}}"#
        }
        func files(_ tag: String, config: String, layer: [UInt8]? = nil) async throws -> JSONValue {
            let image = try await rig.registry.pushImage(
                "diffids", tag, config: config, layers: [(layer ?? Compressors.gzip(shown.archive), Expected.gzipLayer)]
            )
            return try await rig.session.call("ec.oci.image_files", [.string(rig.ref("diffids", image.digest)), ["."]])
        }
        let lying = try await files("lying", config: config([run.archive]))
        #expect(lying.errorCode == -32003)
        #expect(lying.errorReason == "digest_mismatch")
        let honest = try await files("honest", config: config([shown.archive]))
        #expect(honest["result"] == ["policy.yaml": ["allow": true]])
        // Bytes after the archive's end count, as containerd reads a layer
        // to its end.
        let trailing = shown.archive + [1, 2, 3]
        let withTail = try await files("tail", config: config([shown.archive]), layer: Compressors.gzip(trailing))
        #expect(withTail.errorReason == "digest_mismatch")
        let tailSaid = try await files("tail-said", config: config([trailing]), layer: Compressors.gzip(trailing))
        #expect(tailSaid["result"] == ["policy.yaml": ["allow": true]])
        // A layer long enough to be hashed on another core after its first
        // MiBs (`OffThreadHasher`) is checked to its last byte as well.
        var long = shown
        long.file("filler", String(repeating: "x", count: 12 << 20))
        let longTail = long.archive + [1]
        let longWithTail = try await files(
            "long-tail", config: config([long.archive]), layer: Compressors.gzip(longTail))
        #expect(longWithTail.errorReason == "digest_mismatch")
        let longSaid = try await files("long-said", config: config([longTail]), layer: Compressors.gzip(longTail))
        #expect(longSaid["result"] == ["policy.yaml": ["allow": true]])
        // As many diff_ids as layers (else as a layer that is not its
        // diff_id: the original answers, so never invalid_manifest, which
        // a policy may let be undefined, as it was), and a rootfs Go reads
        // as such.
        let count = try await files("count", config: config([shown.archive, run.archive]))
        #expect(count.errorReason == "digest_mismatch", "\(count.jsonText)")
        #expect(count.errorCode == -32003)
        #expect(
            try await files("case", config: config([run.archive], key: "RootFS")).errorReason == "ambiguous_manifest")
        // A config that names no diff_ids, or is no JSON object (Go reads
        // none from it either), is one no runtime unpacks: read as before.
        #expect(try await files("none", config: "{}")["result"] == ["policy.yaml": ["allow": true]])
        #expect(try await files("not-json", config: "\u{1}binary")["result"] == ["policy.yaml": ["allow": true]])
        await rig.stop()
    }

    @Test func theConfigReadForItsDiffIDsIsTakenFromTheMemoryBudget() async throws {
        // A config is read whole before the layers; a registry can make it
        // large. It is bounded as a blob read whole is, and taken from the
        // memory budget: past it the call fails, never skipping the check.
        let rig = try await Rig.start(arguments: ["--max-memory-bytes", "1MiB", "--cache-bytes", "0"])
        var tar = TarBuilder()
        tar.file("policy.yaml", "allow: true\n")
        let padding = String(repeating: "x", count: 2 << 20)
        let config =
            #"{"history":"\#(padding)","rootfs":{"type":"layers","diff_ids":["\#(Digest.of(tar.archive))"]}}"#
        let image = try await rig.registry.pushImage(
            "bigconfig", "v1", config: config, layers: [(Compressors.gzip(tar.archive), Expected.gzipLayer)])
        let files = try await rig.session.call(
            "ec.oci.image_files", [.string(rig.ref("bigconfig", image.digest)), ["."]])
        #expect(files.errorReason == "memory_limit")
        #expect(files["error"]?["data"]?["retryable"] == true)
        await rig.stop()
    }

    @Test func aZstdLayersWindowIsTakenFromTheMemoryBudget() async throws {
        // A frame can make its decoder hold 128 MiB for a few bytes of
        // content; that is taken from the budget before it is allocated.
        let rig = try await Rig.start(arguments: ["--max-memory-bytes", "64MiB"])
        var tar = TarBuilder()
        tar.file("policy.yaml", "allow: true\n")
        let layer = try await rig.registry.pushBlob(
            "window", Data(Compressors.zstdFrame(windowLog: 27, content: tar.archive)))
        let refused = try await rig.session.call(
            "ec.oci.blob_files", [.string(rig.ref("window", layer)), ["policy.yaml"]])
        #expect(refused.errorCode == -32005)
        #expect(refused.errorReason == "memory_limit")
        #expect(refused["error"]?["data"]?["retryable"] == true)
        let blob = try await rig.session.call("ec.oci.blob", [.string(rig.ref("window", layer))])
        #expect(blob.errorReason == "memory_limit")
        // A window the budget has room for is read.
        let small = try await rig.registry.pushBlob(
            "window", Data(Compressors.zstdFrame(windowLog: 24, content: tar.archive)))
        let read = try await rig.session.result(
            "ec.oci.blob_files", [.string(rig.ref("window", small)), ["policy.yaml"]])
        #expect(read == ["policy.yaml": ["allow": true]])
        await rig.stop()
    }

    @Test func theCallsInFlightShareOneMemoryBudget() async throws {
        // What a call reads whole, and its answer as it is written (twice
        // what it read), are taken from a budget of 5 MiB: one file of 1 MiB
        // fits, six do not, nor does a 6 MiB blob.
        let rig = try await Rig.start(arguments: ["--max-memory-bytes", "5MiB", "--cache-bytes", "0"])
        let megabyte = "[" + String(repeating: "1,", count: (1 << 19) - 1) + "1]"
        var tar = TarBuilder()
        for i in 0..<6 { tar.file("data/\(i).json", megabyte) }
        let layer = try await rig.registry.pushBlob("budget", Data(Compressors.gzip(tar.archive)))
        let ref = rig.ref("budget", layer)
        let one = try await rig.session.result("ec.oci.blob_files", [.string(ref), ["data/0.json"]])
        #expect(one["data/0.json"]?.arrayValue?.count == 1 << 19)
        let six = try await rig.session.call(
            "ec.oci.blob_files", [.string(ref), .array((0..<6).map { .string("data/\($0).json") })])
        #expect(six.errorCode == -32005)
        #expect(six.errorReason == "memory_limit")
        #expect(six["error"]?["data"]?["retryable"] == true)
        #expect(six["error"]?["data"]?["ref"] == .string(ref))
        // The same through an image whose two layers hold three files each.
        var lower = TarBuilder()
        var upper = TarBuilder()
        for i in 0..<3 {
            lower.file("data/low-\(i).json", megabyte)
            upper.file("data/up-\(i).json", megabyte)
        }
        var single = TarBuilder()
        single.file("data/0.json", megabyte)
        let image = try await rig.registry.pushImage(
            "budget", "v1",
            layers: [
                (Compressors.gzip(lower.archive), Expected.gzipLayer),
                (Compressors.gzip(upper.archive), Expected.gzipLayer),
            ])
        let flattened = try await rig.session.call(
            "ec.oci.image_files", [.string(rig.ref("budget", image.digest)), ["data"]])
        #expect(flattened.errorReason == "memory_limit")
        // Refused as the files are kept, not only when the answer is written.
        #expect(flattened["error"]?["data"]?["ref"] == .string(rig.ref("budget", image.digest)))
        let fits = try await rig.registry.pushImage(
            "budget", "v2", layers: [(Compressors.gzip(single.archive), Expected.gzipLayer)])
        let fitting = try await rig.session.result(
            "ec.oci.image_files", [.string(rig.ref("budget", fits.digest)), ["data"]])
        #expect(fitting == one)

        let big = try await rig.registry.pushBlob("budget", Data(String(repeating: "x", count: 6 << 20).utf8))
        let blob = try await rig.session.call("ec.oci.blob", [.string(rig.ref("budget", big))])
        #expect(blob.errorReason == "memory_limit")
        let small = try await rig.registry.pushBlob("budget", Data("fits".utf8))
        #expect(try await rig.session.result("ec.oci.blob", [.string(rig.ref("budget", small))]) == "fits")
        // Parsed, a blob is read, then compacted through a buffer: 2 MiB of
        // JSON holds 6 MiB meanwhile.
        let twoMegabytes = try await rig.registry.pushBlob("budget", Data("[\(megabyte),\(megabyte)]".utf8))
        let parsed = try await rig.session.call("ec.oci.parsed_blob", [.string(rig.ref("budget", twoMegabytes))])
        #expect(parsed.errorReason == "memory_limit")
        #expect(parsed["error"]?["data"]?["ref"] == .string(rig.ref("budget", twoMegabytes)))
        let list = try await rig.registry.pushBlob("budget", Data("[1, 2]".utf8))
        #expect(try await rig.session.result("ec.oci.parsed_blob", [.string(rig.ref("budget", list))]) == [1, 2])

        // Everything taken was given back, and the same call is answered
        // again as before.
        let held = try await rig.memoryHeldOnceSettled()
        #expect(held?["used"] == 0)
        #expect(held?["budget"] == .integer(5 << 20))
        #expect(try await rig.session.result("ec.oci.blob_files", [.string(ref), ["data/0.json"]]) == one)
        await rig.stop()
    }

    @Test func theDownloadsInFlightShareOneDiskBudget() async throws {
        // 1 MiB for the downloads in flight: a blob of 2 MiB cannot be
        // downloaded, one of 512 KiB can, and nothing stays taken after.
        let rig = try await Rig.start(arguments: ["--max-download-bytes", "1MiB"])
        let large = try await rig.registry.pushBlob("disk", Data(String(repeating: "l", count: 2 << 20).utf8))
        let small = try await rig.registry.pushBlob("disk", Data(String(repeating: "s", count: 512 << 10).utf8))
        let refused = try await rig.session.call("ec.oci.blob", [.string(rig.ref("disk", large))])
        #expect(refused.errorCode == -32005)
        #expect(refused.errorReason == "download_limit")
        #expect(refused["error"]?["data"]?["retryable"] == true)
        #expect(refused["error"]?["data"]?["ref"] == .string(rig.ref("disk", large)))
        let answered = try await rig.session.result("ec.oci.blob", [.string(rig.ref("disk", small))])
        #expect(answered.stringValue?.utf8.count == 512 << 10)
        let stats = try await rig.session.result("server.stats", [])
        #expect(stats["downloadsHeld"]?["used"] == 0)
        #expect(stats["downloadsHeld"]?["budget"] == .integer(1 << 20))
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
