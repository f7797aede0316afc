import TestFixtures
import Testing
@testable import JSON

/// The compact text `compacted` keeps, or its error.
private func compacted(_ text: [UInt8]) -> Result<[UInt8], JSONParseError> {
    Result { () throws(JSONParseError) -> [UInt8] in
        guard case .encoded(let kept) = try JSONParser.compacted(text) else { return [] }
        return kept.bytes
    }
}

/// What the writer writes for the tree of `text`, each object's repeated
/// keys kept once where they first came with their last value (as Go's
/// readers keep them), or the parser's error.
private func writtenFromTheTree(_ text: [UInt8]) -> Result<[UInt8], JSONParseError> {
    Result { () throws(JSONParseError) in JSONWriter.bytes(lastValueOfEachKey(try JSONParser.parse(text))) }
}

/// `value` with each object's repeated keys kept once, where they first
/// came, with their last value: the model, the slow way (keys compared by
/// their bytes).
private func lastValueOfEachKey(_ value: JSONValue) -> JSONValue {
    switch value {
    case .array(let elements): return .array(elements.map(lastValueOfEachKey))
    case .object(let object):
        var members: [JSONObject.Member] = []
        for member in object.members {
            let value = lastValueOfEachKey(member.value)
            if let place = members.firstIndex(where: { Array($0.key.utf8) == Array(member.key.utf8) }) {
                members[place] = JSONObject.Member(key: members[place].key, value: value)
            } else {
                members.append(JSONObject.Member(key: member.key, value: value))
            }
        }
        return .object(JSONObject(members))
    default: return value
    }
}

@Suite struct JSONCompactionTests {
    /// Every sample, texts near each, and the parser's own cases: the text
    /// kept is what the writer writes for the parser's tree, byte for byte,
    /// or the error is the parser's.
    @Test func theTextKeptIsWhatTheWriterWritesForTheTree() {
        var accepted = 0
        let cases: [[UInt8]] =
            [
                "null", " true ", "[1,[2,{\"a\":[]}]]", "-1.5E-7", #"{"z":1,"a":2,"z":3}"#,
                #""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0000""#, " \t\r\n{ \"a\" : [ 1 , 2 ] }\n", "[1,2,]", "{} {}",
            ].map { Array($0.utf8) }
        for (place, sample) in ManifestSamples.texts.enumerated() {
            let text = Array(sample.utf8)
            for variant in [text] + TextMutations.variants(of: text, count: 1000, seed: 2000 + UInt64(place)) + cases {
                let kept = compacted(variant)
                #expect(kept == writtenFromTheTree(variant), "\(String(decoding: variant, as: UTF8.self))")
                if case .success = kept { accepted += 1 }
            }
        }
        // Both outcomes are reached (else this would check little).
        #expect(accepted > 1_000 && accepted < 12_000, "\(accepted)")
    }

    /// A key an object repeats is kept once, where it first came, with its
    /// last value, as Go's readers keep it: written twice, a client keeping
    /// the first would read the value Go does not. Drawn objects of few
    /// keys (compared pair by pair) and many (sorted), nested, with keys
    /// spelled with escapes, against the model.
    @Test func aRepeatedKeyIsKeptOnceWithItsLastValue() async throws {
        #expect(compacted(Array(#"{"a":1,"a":2}"#.utf8)) == .success(Array(#"{"a":2}"#.utf8)))
        #expect(
            compacted(Array(#"{"\u0061":1,"b":[{"c":1,"c":{"d":1,"d":2}}],"a":3}"#.utf8))
                == .success(Array(#"{"a":3,"b":[{"c":{"d":2}}]}"#.utf8)))
        #expect(compacted(Array(#"{"a\"b":1,"a\\":2,"a\"b":3}"#.utf8)) == .success(Array(#"{"a\"b":3,"a\\":2}"#.utf8)))
        // Two spellings of é are two keys (their bytes differ), as in Go.
        let twoSpellings = Array("{\"caf\u{E9}\":1,\"cafe\u{301}\":2}".utf8)
        #expect(compacted(twoSpellings) == .success(twoSpellings))
        // Seconds of work: on a thread of its own, so the tests' task pool
        // stays free for the others.
        let (differing, rewritten) = await onThreadOfItsOwn { Self.compareDrawnObjects() }
        #expect(differing.isEmpty, "\(differing.prefix(3).joined(separator: "\n"))")
        #expect(rewritten > 300)
    }

    /// 600 drawn objects compacted and checked against the model: the
    /// texts kept otherwise, and how many the rule rewrote.
    private static func compareDrawnObjects() -> (differing: [String], rewritten: Int) {
        var random = SeededGenerator(seed: 0x0DE_2027)
        let keys = [#""a""#, #""b""#, #""\u0061""#, #""a\"""#, #""ab""#, #""\\""#, #""""#, #""é""#, #""\u00e9""#]
        func value(_ depth: Int) -> String {
            switch Int.random(in: 0..<(depth > 2 ? 2 : 4), using: &random) {
            case 0: return String(Int.random(in: 0..<100, using: &random))
            case 1: return #""x""#
            case 2:
                let count = Int.random(in: 0...40, using: &random)
                let members = (0..<count).map { _ in keys.randomElement(using: &random)! + ":" + value(depth + 1) }
                return "{" + members.joined(separator: ",") + "}"
            default: return "[" + value(depth + 1) + "," + value(depth + 1) + "]"
            }
        }
        var differing: [String] = []
        var rewritten = 0
        for _ in 0..<600 {
            let text = Array(
                ("{"
                    + (0..<Int.random(in: 0...60, using: &random)).map { _ in
                        keys.randomElement(using: &random)! + ":" + value(1)
                    }.joined(separator: ",") + "}").utf8)
            let kept = compacted(text)
            if kept != writtenFromTheTree(text) { differing.append(String(decoding: text, as: UTF8.self)) }
            let withRepeats = Result { () throws(JSONParseError) in JSONWriter.bytes(try JSONParser.parse(text)) }
            if kept != withRepeats { rewritten += 1 }
        }
        return (differing, rewritten)
    }

    /// An object of many keys, one repeated, is rewritten in `n log n`: a
    /// hostile blob of 400,000 distinct keys and one repeat costs about
    /// what reading it does.
    @Test func anObjectOfManyKeysIsCheckedForRepeatsBySorting() async throws {
        let members = (0..<400_000).map { #""k\#($0)":\#($0)"# } + [#""k7":"last""#]
        let expected =
            "{"
            + members.prefix(400_000).map { $0.hasPrefix(#""k7":"#) ? #""k7":"last""# : $0 }
            .joined(separator: ",") + "}"
        let text = Array(("{" + members.joined(separator: ",") + "}").utf8)
        let kept = await onThreadOfItsOwn { compacted(text) }
        #expect(kept == .success(Array(expected.utf8)))
    }

    /// What compacting holds is counted from the text: twice the text for
    /// the text written and its copy, and for a text with keys, 16 bytes a
    /// colon (where a key starts, its place and length sorted, the member
    /// whose value it takes) and the text again (an object rewritten).
    @Test func whatCompactingHoldsIsCountedFromTheKeys() {
        let numbers = Array("[1,2,3]".utf8)
        #expect(JSONParser.compactionBytes(for: numbers) == 2 * numbers.count)
        let keyed = Array(#"{"a":1,"b":{"c:d":2}}"#.utf8)
        #expect(JSONParser.compactionBytes(for: keyed) == 3 * keyed.count + 16 * 4)
        // Read as Go reads it, each byte of 0x80 and up may be written as
        // U+FFFD, three bytes, in the text and in its copy: the text a
        // string of them is written as fits in what is counted.
        let notUTF8 = [0x22] + Array(repeating: UInt8(0xFF), count: 1_000) + [0x22]
        let charged = JSONParser.compactionBytes(for: notUTF8, reading: .asGo)
        #expect(charged == 2 * notUTF8.count + 4 * 1_000)
        let written = (try? JSONParser.compacted(notUTF8, reading: .asGo)).map(JSONWriter.bytes)
        #expect(written.map { 2 * $0.count <= charged } == true)
        #expect(JSONParser.compactionBytes(for: notUTF8) == 2 * notUTF8.count)
    }

    /// A text of many small values is kept as text: the value reads back
    /// as the tree, and is charged its text, not a tree twelve times larger.
    @Test func aValueDenseTextIsKeptAsItsText() throws {
        let text = Array(("[" + Array(repeating: "0", count: 100_000).joined(separator: ",") + "]").utf8)
        let kept = try JSONParser.compacted(text)
        #expect(kept.memoryFootprint < 2 * text.count)
        #expect(try JSONParser.parse(text).memoryFootprint > 10 * text.count)
        #expect(kept.arrayValue?.count == 100_000)
    }
}
