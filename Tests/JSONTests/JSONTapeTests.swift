import TestFixtures
import Testing
@testable import JSON

/// What a reader made of a text: its error, or nothing (accepted).
private func outcome(_ read: () throws(JSONParseError) -> Void) -> JSONParseError? {
    do throws(JSONParseError) {
        try read()
        return nil
    } catch {
        return error
    }
}

/// Whether the parser and the tape agree on `text`: both accept it, or
/// both refuse it with the same error at the same place.
private func agree(_ text: [UInt8]) -> Bool {
    outcome { () throws(JSONParseError) in _ = try JSONParser.parse(text) }
        == outcome { () throws(JSONParseError) in _ = try JSONTape.parse(text) }
}

/// Reads two nodes alike and records each difference.
private func expectSame<A: JSONDocumentNode, B: JSONDocumentNode>(_ a: A, _ b: B, _ path: String = "$") {
    #expect(a.isObject == b.isObject && a.isArray == b.isArray && a.isString == b.isString, "\(path)")
    #expect(a.stringText == b.stringText, "\(path)")
    var writtenA = OutputBytes(capacity: 16)
    var writtenB = OutputBytes(capacity: 16)
    let stringsA = a.writeString(into: &writtenA)
    let stringsB = b.writeString(into: &writtenB)
    let numbersA = a.writeNumber(into: &writtenA)
    let numbersB = b.writeNumber(into: &writtenB)
    let textA = writtenA.array()
    let textB = writtenB.array()
    #expect(stringsA == stringsB && numbersA == numbersB, "\(path)")
    #expect(textA == textB, "\(path)")
    var membersA: [(JSONMemberKey, A)] = []
    var membersB: [(JSONMemberKey, B)] = []
    _ = a.forEachMember { membersA.append(($0, $1)) }
    _ = b.forEachMember { membersB.append(($0, $1)) }
    #expect(membersA.map(\.0) == membersB.map(\.0), "\(path)")
    for ((key, valueA), (_, valueB)) in zip(membersA, membersB) { expectSame(valueA, valueB, "\(path).\(key)") }
    var elementsA: [A] = []
    var elementsB: [B] = []
    _ = a.forEachElement { elementsA.append($0) }
    _ = b.forEachElement { elementsB.append($0) }
    #expect(elementsA.count == elementsB.count, "\(path)")
    for (place, (elementA, elementB)) in zip(elementsA, elementsB).enumerated() {
        expectSame(elementA, elementB, "\(path)[\(place)]")
    }
}

@Suite struct JSONTapeTests {
    static let refused: [[UInt8]] =
        [
            "[1,2,]", #"{"a":1,}"#, "[,]", #""\x""#, #""\u12""#, #""\uZZZZ""#, #""\ud800""#, #""\udc00""#,
            #""\ud800\u0041""#, "\"a\nb\"", "01", "-", "1.", ".5", "1e", "+1", "0x10", "", "   ", "[1 2]",
            #"{"a" 1}"#, #"{1:2}"#, "[1", #""abc"#, "tru", "nul", "{} {}",
            String(repeating: "[", count: JSONParser.defaultMaxDepth + 1)
                + String(repeating: "]", count: JSONParser.defaultMaxDepth + 1),
        ].map { Array($0.utf8) } + [
            [0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xE4, 0xB8, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
            [0x22, 0x5C, 0x6E, 0xFF, 0x22], [0xEF, 0xBB, 0xBF, 0x7B, 0x7D], [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D],
        ]

    @Test func theTapeRefusesWhatTheParserRefusesWithTheSameError() {
        for text in Self.refused {
            #expect(throws: JSONParseError.self) { try JSONTape.parse(text) }
            #expect(agree(text), "\(String(decoding: text, as: UTF8.self))")
        }
    }

    /// Every sample, and 3,000 texts near each (bytes replaced, inserted,
    /// removed): accepted by both or refused by both with the same error.
    @Test func theTapeAndTheParserAgreeOnTextsNearTheSamples() async {
        // Seconds of parsing: on a thread of its own, so the tests' task
        // pool (one thread per core) stays free for the others.
        let (disagreements, refusals) = await onThreadOfItsOwn {
            var disagreements: [String] = []
            var refusals = 0
            for (place, sample) in ManifestSamples.texts.enumerated() {
                for text in [Array(sample.utf8)]
                    + TextMutations.variants(of: Array(sample.utf8), count: 3000, seed: UInt64(place))
                {
                    if !agree(text) { disagreements.append(String(decoding: text, as: UTF8.self)) }
                    if (try? JSONParser.parse(text)) == nil { refusals += 1 }
                }
            }
            return (disagreements, refusals)
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(3))")
        // The variants reach both outcomes (30,960 refused of 39,013 with
        // these seeds), else this would check little.
        #expect(refusals > 20_000 && refusals < 36_000, "\(refusals)")
    }

    @Test func aTapeReadsAsTheTreeOfTheSameText() throws {
        for sample in ManifestSamples.texts + ["[1,\"a\",{\"b\":[true,false,null]}]", "\"\\u00e9\"", "-1.5E-7"] {
            let text = Array(sample.utf8)
            let tree = try JSONParser.parse(text)
            try JSONTape.parse(text).withRoot { expectSame(tree, $0) }
        }
    }

    /// Strings with escapes are decoded once, as the text is read, not at
    /// every look: a manifest of many escaped keys is looked up in several
    /// times as it is shaped.
    @Test func stringsWithEscapesAreDecodedOnceAsTheTextIsRead() throws {
        let tape = try JSONTape.parse(Array(#"{"\u0061":"\u00e9","b":"plain","c\n":["\"x\""]}"#.utf8))
        #expect(tape.decoded == Array("a\u{E9}c\n\"x\"".utf8))
        #expect(tape.withRoot { $0.member("a")?.stringText } == "\u{E9}")
        #expect(tape.withRoot { $0.member("b")?.stringText } == "plain")
        // Written again with the escapes they need.
        var out = OutputBytes(capacity: 16)
        _ = tape.withRoot { $0.member("c\n")?.forEachElement { _ = $0.writeString(into: &out) } }
        #expect(out.array() == Array(#""\"x\"""#.utf8))
        let keys = tape.withRoot { root in
            var keys = OutputBytes(capacity: 16)
            _ = root.forEachMember { key, _ in key.write(into: &keys) }
            return keys.array()
        }
        #expect(keys == Array(#""a""b""c\n""#.utf8))
    }

    /// What a tape holds besides its text is bounded by the text's length,
    /// whatever the text: the most values a text can hold (a value and a
    /// separator each), the most escapes, and a long one of each.
    /// A tape reads nesting as deep as Go's `encoding/json` (10,000
    /// levels) on a thread of the shared pool, whose stack a reader that
    /// recursed ran out of at 5,000; a level more is refused as the parser
    /// refuses nesting past its bound.
    @Test func theTapeReadsAsDeepAsGo() async {
        func nested(_ depth: Int) -> [UInt8] {
            Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        }
        let read = await Task.detached {
            (
                (try? JSONTape.parse(nested(10_000), maxDepth: JSONParser.goMaxDepth)) != nil,
                outcome { () throws(JSONParseError) in
                    _ = try JSONTape.parse(nested(10_001), maxDepth: JSONParser.goMaxDepth)
                }
            )
        }.value
        #expect(read.0)
        #expect(read.1?.reason == "nesting deeper than 10000")
        #expect(read.1?.isNestingLimit == true)
    }

    @Test func whatATapeHoldsIsBoundedByItsText() async throws {
        let count = 300_000
        func repeated(_ open: String, _ element: String, _ close: String) -> [UInt8] {
            Array((open + Array(repeating: element, count: count).joined(separator: ",") + close).utf8)
        }
        let texts: [[UInt8]] = [
            repeated("[", "0", "]"), repeated("[", "[]", "]"), repeated("[", "{}", "]"),
            repeated("{", #""":0"#, "}"), repeated("[", #""\n""#, "]"), repeated("{", #""\n":"\t""#, "}"),
            Array(("[\"" + String(repeating: "\\u00e9", count: count) + "\"]").utf8),
            Array(("\"" + String(repeating: "x", count: count) + "\"").utf8),
            Array("0".utf8), Array("[]".utf8), Array(#"{"a":"\u0062"}"#.utf8),
        ]
        // Read as Go reads it, a byte that is not UTF-8 is three decoded.
        let notUTF8: [[UInt8]] = [
            [0x5B, 0x22] + Array(repeating: 0xFF, count: count) + [0x22, 0x5D],
            [0x5B] + Array(Array(repeating: [0x22, 0xFF, 0x22], count: count).joined(separator: [0x2C])) + [0x5D],
        ]
        // Seconds of parsing: on a thread of its own (as above).
        let heldBytes = await onThreadOfItsOwn {
            texts.map { (try? JSONTape.parse($0))?.heldBytes }
                + notUTF8.map { (try? JSONTape.parse($0, reading: .asGo))?.heldBytes }
        }
        for (text, held) in zip(texts + notUTF8, heldBytes) {
            let held = try #require(held, "\(text.prefix(12))")
            #expect(held <= JSONTape.maxHeldBytes(forText: text.count) && held > 0, "\(text.prefix(12))")
        }
        // The bound is not loose: the densest text comes within 1% of it.
        let densest = texts[0]
        let held = try #require(heldBytes[0])
        #expect(held * 100 >= JSONTape.maxHeldBytes(forText: densest.count) * 99)
    }

    /// A long text gets room for its most entries at once, so it never
    /// holds two buffers while one grows (ten-digit numbers: growing as
    /// needed would make room for a fraction of that).
    @Test func aLongTextsEntriesAreMadeRoomForOnce() throws {
        let text = Array(("[" + Array(repeating: "1234567890", count: 10_000).joined(separator: ",") + "]").utf8)
        #expect(text.count > JSONTape.reservedTextBytes)
        let tape = try JSONTape.parse(text)
        #expect(tape.entries.count == 10_001)
        #expect(tape.entries.capacity >= text.count / 2 + 2)
    }

    @Test func anEscapedKeyIsFoundByWhatItDecodesTo() throws {
        let tape = try JSONTape.parse(Array(#"{"media\u0054ype":"x","mediaType":"y","\u006dediaType":"z"}"#.utf8))
        #expect(tape.withRoot { $0.member("mediaType")?.stringText } == "z")
    }

    /// Keys are told apart by their bytes, as Go tells map keys apart: `é`
    /// written precomposed and decomposed are two keys, though Swift's
    /// `String` calls them equal.
    @Test func keysAreToldApartByTheirBytes() throws {
        let precomposed = "\u{E9}"
        let decomposed = "e\u{301}"
        #expect(precomposed == decomposed)
        #expect(JSONMemberKey(text: precomposed) != JSONMemberKey(text: decomposed))
        let text = "{\"" + precomposed + "\":1,\"" + decomposed + "\":2,\"\\u00e9\":3}"
        let tape = try JSONTape.parse(Array(text.utf8))
        let keys = tape.withRoot { root in
            var keys: [JSONMemberKey] = []
            _ = root.forEachMember { key, _ in keys.append(key) }
            return keys
        }
        #expect(keys.count == 3)
        #expect(keys[0] != keys[1] && keys[0] == keys[2])
        #expect(keys[0].hashValue == keys[2].hashValue && keys[0] == JSONMemberKey(text: precomposed))
    }
}
