import JSON
import TestFixtures
import Testing
@testable import OCIMethods

/// The answer shaped from a text's tree and from its tape, as text: nil
/// when the text is not JSON.
private func shapedBothWays(_ text: [UInt8], index: Bool = false) -> (tree: String, tape: String)? {
    guard let tree = try? JSONParser.parse(text), let tape = try? JSONTape.parse(text) else { return nil }
    guard let fromTree = try? (index ? Shapes.index(tree) : Shapes.manifest(tree)),
        let fromTape = try? tape.withRoot({ root throws(Shapes.AnswerTooLarge) in
            try index ? Shapes.index(root) : Shapes.manifest(root)
        })
    else { return nil }
    return (fromTree.jsonText, fromTape.jsonText)
}

@Suite struct ShapesTests {
    @Test func descriptorsHaveEveryKeyAndPlatformOnlyWhenPresent() throws {
        let bare = Shapes.descriptor(["mediaType": "m", "size": 3, "digest": "sha256:x"])
        #expect(
            bare == [
                "mediaType": "m", "size": 3, "digest": "sha256:x", "data": "", "urls": [], "annotations": [:],
                "artifactType": "",
            ])
        let full = Shapes.descriptor([
            "mediaType": "m", "size": 3, "digest": "sha256:x", "data": "aGVsbG8=", "urls": ["u"],
            "annotations": ["k": "v"], "artifactType": "a", "platform": ["os": "linux", "architecture": "arm64"],
        ])
        #expect(full["data"] == "hello")
        #expect(
            full["platform"] == [
                "architecture": "arm64", "os": "linux", "os.version": "", "os.features": [], "variant": "",
                "features": [],
            ])
    }

    @Test func manifestsGetSubjectOnlyWhenTheyHaveOne() throws {
        let manifest: JSONValue = ["schemaVersion": 2, "config": ["digest": "sha256:c", "size": 2, "mediaType": "c"]]
        let shaped = try Shapes.manifest(manifest)
        #expect(shaped.objectValue?.keys == ["schemaVersion", "mediaType", "config", "layers", "annotations"])
        #expect(shaped["mediaType"] == "")
        var withSubject = manifest.objectValue!
        withSubject["subject"] = ["digest": "sha256:s", "size": 5, "mediaType": "m"]
        #expect(try Shapes.manifest(JSONValue.object(withSubject))["subject"]?["digest"] == "sha256:s")
    }

    /// A key given twice keeps its first place and its last string (what a
    /// lookup of it sees); members that are not strings are left out.
    /// Checked on a small map and on one large enough to be hashed.
    @Test(arguments: [0, 40])
    func repeatedAnnotationKeysKeepTheirFirstPlaceAndTheirLastString(padding: Int) throws {
        var annotations = JSONObject()
        annotations.append("a", "1")
        annotations.append("b", "2")
        for i in 0..<padding { annotations.append("p\(i)", "x") }
        annotations.append("a", 3)
        annotations.append("c", ["not": "a string"])
        annotations.append("a", "4")
        annotations.append("b", "5")
        let document: JSONValue = ["annotations": .object(annotations)]
        let shaped = try Shapes.manifest(document)
        let both = try #require(shapedBothWays(JSONWriter.bytes(document)))
        #expect(both.tree == shaped.jsonText && both.tape == shaped.jsonText)
        let expected = ["a": "4", "b": "5"].merging((0..<padding).map { ("p\($0)", "x") }) { a, _ in a }
        let keys = try #require(shaped["annotations"]?.objectValue?.keys)
        #expect(keys == ["a", "b"] + (0..<padding).map { "p\($0)" })
        for (key, value) in expected { #expect(shaped["annotations"]?[key]?.stringValue == value) }
    }

    /// A hostile manifest of 400,000 annotations (about the 4 MiB a
    /// manifest may be): shaped in linear time. Looking each key up in
    /// the ones before it took 42 s for a tenth of that.
    @Test func aManifestOfHundredsOfThousandsOfAnnotationsIsShapedInLinearTime() async throws {
        // Seconds of work: on a thread of its own, off the tests' task pool.
        let outcome = await onThreadOfItsOwn {
            Result { () throws -> (Int?, Bool, Duration, Duration) in
                var text = #"{"schemaVersion":2,"annotations":{"#
                for i in 0..<400_000 { text += (i > 0 ? "," : "") + #""k\#(i)":"v""# }
                text += "}}"
                let document = try JSONParser.parse(text)
                let tape = try JSONTape.parse(Array(text.utf8))
                // Thread CPU time, which other tests do not stretch.
                let (shaped, elapsed) = try measuringThreadCPUTime { try Shapes.manifest(document) }
                let (shapedFromTape, elapsedFromTape) = try measuringThreadCPUTime {
                    try tape.withRoot { root throws(Shapes.AnswerTooLarge) in try Shapes.manifest(root) }
                }
                print("400,000 annotations shaped in \(elapsed) of CPU, \(elapsedFromTape) from the tape")
                return (
                    shaped["annotations"]?.objectValue?.count, shapedFromTape.jsonText == shaped.jsonText, elapsed,
                    elapsedFromTape
                )
            }
        }
        let (annotations, sameText, elapsed, elapsedFromTape) = try outcome.get()
        #expect(annotations == 400_000)
        #expect(sameText)
        #expect(elapsed < .seconds(30))
        #expect(elapsedFromTape < .seconds(30))
    }

    /// Every sample, and 2,000 texts near each: the answer shaped from the
    /// manifest's bytes is the one shaped from its tree, byte for byte, for
    /// every text that is JSON.
    @Test func answersShapedFromTheBytesAreTheOnesShapedFromTheTree() throws {
        var compared = 0
        for (place, sample) in ManifestSamples.texts.enumerated() {
            let text = Array(sample.utf8)
            for variant in [text] + TextMutations.variants(of: text, count: 2000, seed: 1000 + UInt64(place)) {
                for index in [false, true] {
                    guard let both = shapedBothWays(variant, index: index) else { continue }
                    #expect(both.tree == both.tape, "\(String(decoding: variant, as: UTF8.self))")
                    compared += 1
                }
            }
        }
        // Enough of the variants are JSON to be shaped (10,756 comparisons
        // with these seeds), else this would check little.
        #expect(compared > 8_000, "\(compared)")
    }

    /// A `null` where a string belongs in a list or a map is `""`, as Go
    /// reads it into a `[]string` or a `map[string]string`; other values
    /// there are left out (the manifest check refuses them first).
    @Test func nullStringsInListsAndMapsAreEmptyStrings() throws {
        let text =
            #"{"annotations":{"a":null,"b":"x","c":1},"layers":[{"urls":[null,"u",2],"platform":{"features":[null]}}]}"#
        let both = try #require(shapedBothWays(Array(text.utf8)))
        #expect(both.tree == both.tape)
        let shaped = try JSONParser.parse(both.tape)
        #expect(shaped["annotations"] == ["a": "", "b": "x"])
        #expect(shaped["layers"]?.arrayValue?.first?["urls"] == ["", "u"])
        #expect(shaped["layers"]?.arrayValue?.first?["platform"]?["features"] == [""])
    }

    /// Integers are written as Go writes the `int64` it read: `-0` is `0`.
    @Test func negativeZeroIsWrittenAsZero() throws {
        let both = try #require(shapedBothWays(Array(#"{"schemaVersion":-0,"layers":[{"size":-0},{"size":-1}]}"#.utf8)))
        #expect(both.tree == both.tape)
        #expect(both.tape.hasPrefix(#"{"schemaVersion":0,"#), "\(both.tape)")
        #expect(both.tape.contains(#""size":0,"#) && both.tape.contains(#""size":-1,"#), "\(both.tape)")
    }

    /// Annotation keys written precomposed and decomposed are two keys
    /// (as Go keeps them), both kept, from the tree and from the bytes.
    @Test func annotationKeysAreToldApartByTheirBytes() throws {
        let precomposed = "\u{E9}"
        let decomposed = "e\u{301}"
        let text = #"{"annotations":{""# + precomposed + #"":"1",""# + decomposed + #"":"2","\u00e9":"3"}}"#
        let both = try #require(shapedBothWays(Array(text.utf8)))
        #expect(both.tree == both.tape)
        let expected = #""annotations":{""# + precomposed + #"":"3",""# + decomposed + #"":"2"}"#
        // By bytes: `String.contains` would equate the two spellings.
        #expect(Array(both.tape.utf8).firstRange(of: Array(expected.utf8)) != nil, "\(both.tape)")
    }

    /// Every descriptor is written with all its keys, so 4 MiB of `{}`
    /// would be an answer of 126 MiB: refused past 16 MiB, from a tree, a
    /// tape or a referrers list.
    @Test func anAnswerIsBoundedWhateverTheManifestHolds() async throws {
        // Seconds of parsing and shaping: on a thread of its own, so the
        // tests' task pool (one thread per core) stays free for the others.
        let outcome = await onThreadOfItsOwn { Result { try Self.shapeFourMiBOfEmptyDescriptors() } }
        let (refusals, tenthLayers, tenthReferrers, count) = try outcome.get()
        #expect(refusals == ["tree": true, "index": true, "tape": true, "referrers": true])
        // A tenth of it is answered, as it always was.
        #expect(tenthLayers == count / 10)
        #expect(tenthReferrers == count / 10)
    }

    /// Every descriptor is written with all its keys, so 4 MiB of `{}`
    /// would be an answer of 126 MiB: whether each way of shaping it (from
    /// a tree, an index, a tape, a referrers list) refuses it past 16 MiB,
    /// and how many descriptors a tenth of it is answered with.
    private static func shapeFourMiBOfEmptyDescriptors() throws -> (
        refusals: [String: Bool], tenthLayers: Int?, tenthReferrers: Int?, count: Int
    ) {
        func refuses(_ shape: () throws -> JSONValue) -> Bool {
            do {
                _ = try shape()
                return false
            } catch {
                return error is Shapes.AnswerTooLarge
            }
        }
        let count = (4 << 20) / 3
        let empties = Array(repeating: "{}", count: count).joined(separator: ",")
        let text = Array(("{\"layers\":[" + empties + "]}").utf8)
        let tree = try JSONParser.parse(text)
        let index = try JSONParser.parse(Array(("{\"manifests\":[" + empties + "]}").utf8))
        let tape = try JSONTape.parse(text)
        let refusals = [
            "tree": refuses { try Shapes.manifest(tree) },
            "index": refuses { try Shapes.index(index) },
            "tape": refuses { try tape.withRoot { root throws(Shapes.AnswerTooLarge) in try Shapes.manifest(root) } },
            "referrers": refuses { try Shapes.referrers(index, repository: "r.test/app") },
        ]
        let tenth = Array(
            ("{\"layers\":[" + Array(repeating: "{}", count: count / 10).joined(separator: ",") + "]}").utf8)
        let answer = try JSONTape.parse(tenth).withRoot { root throws(Shapes.AnswerTooLarge) in
            try Shapes.manifest(root)
        }
        let someReferrers = try Shapes.referrers(
            try JSONParser.parse(
                Array(
                    ("{\"manifests\":[" + Array(repeating: "{}", count: count / 10).joined(separator: ",") + "]}").utf8)
            ),
            repository: "r.test/app")
        return (refusals, answer["layers"]?.arrayValue?.count, someReferrers.arrayValue?.count, count)
    }

    /// An answer is never longer than the bound its document's length sets
    /// (what shaping is taken from the memory budget for), whatever the
    /// document holds; the densest document comes close to it.
    @Test func anAnswerIsWithinTheBoundItsDocumentsLengthSets() async throws {
        // Seconds of shaping: on a thread of its own (see above).
        let outcome = await onThreadOfItsOwn { Result { try Self.answersAndTheirBounds() } }
        for (text, length, bound) in try outcome.get() {
            #expect(length <= bound, "\(text)")
        }
        // The densest document comes close to its bound.
        let (_, length, bound) = try outcome.get()[0]
        #expect(length * 10 >= bound * 9)
        #expect(Shapes.maxAnswerBytes(forText: 1 << 30) == Shapes.maxAnswerBytes)
    }

    /// For documents of every kind that makes answers long, each answer's
    /// length and the bound its document's length sets (the densest first).
    private static func answersAndTheirBounds() throws -> [(text: String, length: Int, bound: Int)] {
        let count = 20_000
        func list(_ element: String) -> String { Array(repeating: element, count: count).joined(separator: ",") }
        let control = String(repeating: "\\u0001", count: count)
        let texts: [(String, index: Bool)] = [
            (#"{"layers":["# + list("0") + "]}", false),
            (#"{"layers":["# + list("{}") + "]}", false),
            (#"{"manifests":["# + list("0") + "]}", true),
            (#"{"manifests":["# + list(#"{"platform":{}}"#) + "]}", true),
            (#"{"config":{"data":""# + String(repeating: "AAAA", count: count) + #""}}"#, false),
            (#"{"config":{"data":""# + String(repeating: "////", count: count) + #""}}"#, false),
            (#"{"annotations":{"a":""# + control + #""},"subject":{}}"#, false),
            (#"{"layers":[{"urls":["# + list(#""\u0001""#) + "]}]}", false),
            (#"{"layers":[{"annotations":{"# + list(#""\u0001":"""#) + "}}]}", false),
        ]
        var results: [(text: String, length: Int, bound: Int)] = []
        for (text, index) in texts {
            let bytes = Array(text.utf8)
            let answer = try JSONTape.parse(bytes).withRoot { root throws(Shapes.AnswerTooLarge) in
                try index ? Shapes.index(root) : Shapes.manifest(root)
            }
            results.append(
                (String(text.prefix(30)), answer.jsonText.utf8.count, Shapes.maxAnswerBytes(forText: bytes.count)))
        }
        // A referrers answer: each element names the repository, and its
        // digest is written twice.
        let name = String(repeating: "n", count: 200)
        let referrerTexts = [
            #"{"manifests":["# + list("0") + "]}",
            #"{"manifests":["# + list(#"{"digest":"\u0001"}"#) + "]}",
            #"{"manifests":[{"annotations":{"# + list(#""\u0001":"\u0002""#) + "}}]}",
        ]
        for text in referrerTexts {
            let bytes = Array(text.utf8)
            let answer = try JSONTape.parse(bytes).withRoot { root throws(Shapes.AnswerTooLarge) in
                try Shapes.referrers(root, repository: name)
            }
            let bound = Shapes.maxReferrersBytes(forText: bytes.count, repository: name)
            results.append((String(text.prefix(30)), answer.jsonText.utf8.count, bound))
        }
        return results
    }

    static let platformCases: [(String, JSONValue, Bool)] = [
        ("linux/amd64", ["os": "linux", "architecture": "amd64"], true),
        ("linux/arm64", ["os": "linux", "architecture": "arm64", "variant": "v8"], true),
        ("linux/arm64/v8", ["os": "linux", "architecture": "arm64", "variant": "v8"], true),
        ("linux/arm/v7", ["os": "linux", "architecture": "arm", "variant": "v6"], false),
        ("linux/amd64", ["os": "windows", "architecture": "amd64"], false),
    ]

    @Test func platformsMatchIndexEntries() throws {
        for (asked, platform, matches) in Self.platformCases {
            #expect(try Platform(asked).matches(platform) == matches, "\(asked) vs \(platform.jsonText)")
        }
    }

    @Test func malformedPlatformsAreInvalidParams() {
        for text in ["linux", "linux/", "a/b/c/d", ""] {
            #expect(throws: (any Error).self) { try Platform(text) }
        }
    }
}
