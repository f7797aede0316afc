import JSON
import Reasons
import TestFixtures
import Testing
@testable import OCIMethods

/// The check's answer for `text` read as a tree and as a tape, which must
/// agree: nil when both find no problem.
private func problem(_ text: String) throws -> String? {
    let bytes = Array(text.utf8)
    let fromTree = ManifestTypeCheck.problem(in: try JSONParser.parse(bytes))
    let fromTape = try JSONTape.parse(bytes).withRoot { ManifestTypeCheck.problem(in: $0) }
    #expect(fromTree == fromTape, "\(text)")
    return fromTape?.description
}

private let layerDigest = "sha256:" + String(repeating: "a", count: 64)
private let configDigest = "sha256:" + String(repeating: "b", count: 64)

/// A manifest with `member` added at its top.
private func manifest(_ member: String) -> String {
    #"{"schemaVersion":2,"config":{"mediaType":"c","size":2,"digest":"\#(configDigest)"},\#(member)}"#
}

/// A manifest whose one layer has `member` added.
private func layer(_ member: String) -> String {
    manifest(#""layers":[{"mediaType":"l","size":3,"digest":"\#(layerDigest)",\#(member)}]"#)
}

@Suite struct ManifestTypeCheckTests {
    /// Manifests and indexes as registries serve them: no problem.
    @Test(arguments: [
        manifest(#""mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"annotations":{"a":"b"}"#),
        layer(
            #""urls":["https://example.com/l"],"annotations":{"k":"v"},"data":"aGVsbG8=","artifactType":"application/x""#
        ),
        #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"m","size":7,"digest":"\#(layerDigest)","platform":{"architecture":"arm64","os":"linux","variant":"v8","os.version":"10","os.features":["f"],"features":["g"]}}]}"#,
        manifest(#""subject":{"mediaType":"m","size":1,"digest":"sha512:\#(String(repeating: "c", count: 128))"}"#),
        // Fields the shapes do not read, of any type; schema 1's fields.
        manifest(#""fsLayers":5,"history":[{"v1Compatibility":{}}],"name":["x"],"signatures":null"#),
        // Escaped keys are their decoded text, as in Go.
        manifest(#""\u006cayers":[]"#),
    ])
    func manifestsAsRegistriesServeThemPass(text: String) throws {
        #expect(try problem(text) == nil)
    }

    /// `null` is no value in Go (the field stays empty), except for a
    /// digest, whose reader refuses it.
    @Test func nullIsNoValueExceptForADigest() throws {
        #expect(try problem(manifest(#""layers":null,"annotations":null,"mediaType":null,"subject":null"#)) == nil)
        #expect(try problem(layer(#""urls":[null],"annotations":{"k":null},"platform":null,"data":null"#)) == nil)
        #expect(try problem(manifest(#""layers":[null]"#)) == nil)
        #expect(
            try problem(manifest(#""layers":[{"digest":null}]"#)) == "layers[0].digest: null, where a digest belongs")
    }

    /// A known field of another type than Go's: where, and what.
    @Test(arguments: [
        (manifest(#""layers":{}"#), "layers: an object, where an array belongs"),
        (manifest(#""layers":[1]"#), "layers[0]: a number, where an object belongs"),
        (#"{"schemaVersion":"2"}"#, "schemaVersion: a string, where an integer belongs"),
        (manifest(#""mediaType":7"#), "mediaType: a number, where a string belongs"),
        (manifest(#""annotations":[]"#), "annotations: an array, where an object of strings belongs"),
        (manifest(#""annotations":{"a":"1","b":2}"#), "annotations.b: a number, where a string belongs"),
        (manifest(#""subject":"x""#), "subject: a string, where an object belongs"),
        (#"{"config":true}"#, "config: a boolean, where an object belongs"),
        (manifest(#""manifests":[{"size":"12"}]"#), "manifests[0].size: a string, where an integer belongs"),
        (layer(#""urls":["a",1]"#), "layers[0].urls[1]: a number, where a string belongs"),
        (layer(#""urls":"a""#), "layers[0].urls: a string, where an array of strings belongs"),
        (layer(#""artifactType":{}"#), "layers[0].artifactType: an object, where a string belongs"),
        (layer(#""data":5"#), "layers[0].data: a number, where base64 text belongs"),
        (layer(#""platform":[]"#), "layers[0].platform: an array, where an object belongs"),
        (
            layer(#""platform":{"os":"linux","features":"x"}"#),
            "layers[0].platform.features: a string, where an array of strings belongs"
        ),
        (
            layer(#""platform":{"os.features":[true]}"#),
            "layers[0].platform.os.features[0]: a boolean, where a string belongs"
        ),
    ])
    func aFieldOfAnotherTypeIsAProblem(text: String, expected: String) throws {
        #expect(try problem(text) == expected)
    }

    /// Integers as Go's `strconv.ParseInt` reads them into an `int64`.
    @Test(arguments: [
        ("0", true), ("-0", true), ("12", true), ("9223372036854775807", true), ("-9223372036854775808", true),
        ("9223372036854775808", false), ("-9223372036854775809", false), ("1.0", false), ("1e2", false),
        ("-1E2", false), ("100000000000000000000", false),
    ])
    func integersAreTheOnesGoReadsIntoAnInt64(number: String, fits: Bool) throws {
        #expect(ManifestTypeCheck.isInt64(number) == fits)
        let found = try problem(manifest(#""layers":[{"size":\#(number)}]"#))
        #expect(found == (fits ? nil : "layers[0].size: \(number) is not a 64-bit integer"))
    }

    /// A descriptor's digest: `sha256:<64 hex>` (Go's only one) or
    /// `sha512:<128 hex>`, lower-case hex.
    @Test(arguments: [
        ("", false), (":", false), ("sha256:" + String(repeating: "a", count: 63), false),
        ("sha256:" + String(repeating: "A", count: 64), false), ("sha384:" + String(repeating: "a", count: 96), false),
        ("sha256:" + String(repeating: "a", count: 64) + ":", false),
        ("sha256:" + String(repeating: "0", count: 64), true), ("sha512:" + String(repeating: "f", count: 128), true),
    ])
    func digestsAreRefusedUnlessTheyAreOne(digest: String, valid: Bool) throws {
        let found = try problem(manifest(#""layers":[{"digest":"\#(digest)"}]"#))
        if valid {
            #expect(found == nil)
        } else {
            #expect(found?.hasPrefix("layers[0].digest: \"") == true, "\(found ?? "nil")")
            #expect(found?.hasSuffix("is not a digest (sha256:<64 hex> or sha512:<128 hex>)") == true)
        }
    }

    /// `data` as Go's `base64.StdEncoding` reads it: padded groups of four,
    /// trailing bits not checked, line breaks ignored; Foundation alone
    /// would take `=` past the padding.
    @Test(arguments: [
        ("", [UInt8]()), ("QQ==", [65]), ("QR==", [65]), ("QUJD", [65, 66, 67]), ("QU\nJD", [65, 66, 67]),
        ("QUJD\r\n", [65, 66, 67]), ("+/+/", [251, 255, 191]),
    ])
    func base64IsReadAsGoReadsIt(text: String, bytes: [UInt8]) throws {
        let decoded = Array(text.utf8).withUnsafeBufferPointer { Base64Text.decode($0) }
        #expect(decoded.map { Array($0) } == bytes)
        let escaped = text.replacingOccurrences(of: "\n", with: #"\n"#).replacingOccurrences(of: "\r", with: #"\r"#)
        #expect(try problem(layer(#""data":"\#(escaped)""#)) == nil)
    }

    @Test(arguments: ["QQ", "QQ=", "Q===", "====", "QUJD====", "QQ==QQ==", "QU JD", "-_-_", "QUJ\u{E9}"])
    func base64GoRefusesIsAProblem(text: String) throws {
        #expect(Array(text.utf8).withUnsafeBufferPointer { Base64Text.decode($0) } == nil)
        let found = try problem(layer(#""data":"\#(text)""#))
        #expect(found?.hasPrefix("layers[0].data: ") == true && found?.hasSuffix("is not base64") == true)
    }

    /// Go matches keys to fields without regard to case, and folds four
    /// other letters to ASCII ones: such a key is refused, since every
    /// other reader here would not see it as the field.
    @Test(arguments: [
        (manifest(#""Layers":[]"#), "Layers", "layers"),
        (manifest(#""LAYERS":[]"#), "LAYERS", "layers"),
        (manifest(#""mediatype":"x""#), "mediatype", "mediaType"),
        (manifest(#""medıaType":"x""#), "medıaType", "mediaType"),
        (manifest(#""annotatİons":{}"#), "annotatİons", "annotations"),
        (layer(#""ſize":1"#), "ſize", "size"),
        (layer(#""Digest":"x""#), "Digest", "digest"),
        (layer(#""platform":{"OS":"linux"}"#), "OS", "os"),
        (layer(#""platform":{"os.Version":"1"}"#), "os.Version", "os.version"),
    ])
    func aKeyGoTakesForAFieldInOtherLettersIsAProblem(text: String, key: String, field: String) throws {
        let found = try #require(try problem(text))
        #expect(
            found.hasSuffix("the key \"\(key)\" is \"\(field)\" in other letters, which Go reads as it"), "\(found)")
    }

    /// Keys near a field's name that Go does not take for it.
    @Test(arguments: ["layer", "layerss", "lay ers", "l\u{0301}ayers", "mediaŤype", "os_version"])
    func keysGoDoesNotTakeForAFieldAreLeftAlone(key: String) throws {
        #expect(try problem(manifest(#""\#(key)":5"#)) == nil)
        #expect(try problem(layer(#""platform":{"\#(key)":5}"#)) == nil)
    }

    /// A field given twice: Go merges two objects into one, so a lookup
    /// of the last is not what Go reads. Annotation keys are a map's, where
    /// the last wins in Go too.
    @Test func aFieldGivenTwiceIsAProblem() throws {
        let config = #""config":{"digest":"\#(configDigest)","size":2},"config":{"mediaType":"m"}"#
        #expect(try problem(#"{\#(config)}"#) == "config: given twice (Go would merge the two)")
        #expect(try problem(layer(#""size":4"#)) == "layers[0].size: given twice (Go would merge the two)")
        #expect(try problem(manifest(#""annotations":{"a":"1","a":"2"}"#)) == nil)
        #expect(try problem(manifest(#""unknown":1,"unknown":"x""#)) == nil)
    }

    /// What Go reads otherwise than an exact lookup (a key in other
    /// letters, a field given twice, at any depth) is `ambiguous_manifest`:
    /// the original answers, so the refusal must never read as the
    /// content's absence. What Go refuses too is `invalid_manifest`.
    @Test func whatGoReadsOtherwiseIsAmbiguousAndWhatGoRefusesIsInvalid() throws {
        func reason(_ text: String, config: Bool = false) throws -> ErrorReason? {
            try JSONTape.parse(Array(text.utf8)).withRoot { root in
                config ? ManifestTypeCheck.problem(inConfig: root) : ManifestTypeCheck.problem(in: root)
            }?.reason
        }
        #expect(try reason(manifest(#""Layers":[]"#)) == .ambiguousManifest)
        #expect(try reason(layer(#""platform":{"OS":"linux"}"#)) == .ambiguousManifest)
        #expect(try reason(layer(#""size":4"#)) == .ambiguousManifest)
        #expect(try reason(#"{"RootFS":{"diff_ids":[]}}"#, config: true) == .ambiguousManifest)
        #expect(try reason(manifest(#""layers":{}"#)) == .invalidManifest)
        #expect(try reason(layer(#""platform":{"os":5}"#)) == .invalidManifest)
        #expect(try reason(manifest(#""annotations":{"a":1}"#)) == .invalidManifest)
        #expect(try reason(#"{"rootfs":{"diff_ids":"x"}}"#, config: true) == .invalidManifest)
    }

    /// A message shows at most 80 bytes of a hostile value.
    @Test func aLongValueIsCutInTheMessage() throws {
        let long = String(repeating: "z", count: 100_000)
        let found = try #require(try problem(manifest(#""layers":[{"digest":"\#(long)"}]"#)))
        #expect(found.utf8.count < 200)
    }

    /// Samples and 2,000 texts near each: the tree and the tape agree on
    /// every text that is JSON (`problem` expects it), and the check never
    /// traps.
    @Test func theTreeAndTheTapeAgreeOnTextsNearTheSamples() throws {
        var compared = 0
        for (place, sample) in ManifestSamples.texts.enumerated() {
            let text = Array(sample.utf8)
            for variant in [text] + TextMutations.variants(of: text, count: 2000, seed: 7000 + UInt64(place)) {
                guard let tree = try? JSONParser.parse(variant), let tape = try? JSONTape.parse(variant) else {
                    continue
                }
                let fromTape = tape.withRoot { ManifestTypeCheck.problem(in: $0) }
                #expect(ManifestTypeCheck.problem(in: tree) == fromTape)
                compared += 1
            }
        }
        #expect(compared > 4_000, "\(compared)")
    }
}

extension ManifestTypeCheck {
    /// `isInt64` on a Swift string's bytes.
    static func isInt64(_ text: String) -> Bool {
        Array(text.utf8).withUnsafeBufferPointer { isInt64($0) }
    }
}
