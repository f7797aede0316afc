import JSON
import Testing
import TestFixtures

/// `JSONTextReading.asGo` against Go's `encoding/json` (`Tests/GoReaders`,
/// `json`), which the original reads blobs (`parsed_blob`) and
/// go-containerregistry reads manifests with. Text that is not Unicode is
/// U+FFFD to it, each byte that is not UTF-8 and each escaped surrogate
/// not in a pair; the server refused such a text, so a blob or manifest
/// the original answered was an error, and an error leaves a policy's
/// rule undefined (a `deny` that never fires).
@Suite struct JSONGoReading {
    typealias Value = ComparedValue

    /// A node of a tape read as the tree reads it.
    static func value<Node: JSONDocumentNode>(of node: Node) -> Value {
        if node.isObject {
            var members: [[UInt8]: [Value]] = [:]
            _ = node.forEachMember { key, member in
                members[key.withUTF8 { Array($0) }, default: []].append(value(of: member))
            }
            return .object(members)
        }
        if node.isArray {
            var elements: [Value] = []
            _ = node.forEachElement { elements.append(value(of: $0)) }
            return .array(elements)
        }
        if node.isNull { return .null }
        if let string = node.withStringUTF8({ Array($0) }) { return .string(string) }
        if let number = node.numberText { return .number(Double(number) ?? .nan) }
        // A bool, which the node cannot say the value of: the texts here
        // hold none, so one would be a difference the comparison shows.
        return .bool(false)
    }

    static let pieces: [[UInt8]] = [
        [0xFF], [0xFE, 0x41], [0xC3], [0xC3, 0xA9], [0xE2, 0x82], [0xE2, 0x82, 0xAC], [0xED, 0xA0, 0x80],
        [0xC0, 0x80], [0xF0, 0x9F, 0x98], [0xF0, 0x9F, 0x98, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80],
        Array(#"\ud800"#.utf8), Array(#"\udc00"#.utf8), Array(#"\ud83d\ude00"#.utf8), Array(#"\ud83d\u0041"#.utf8),
        Array(#"\ud800\ud800\udc00"#.utf8), Array(#"\ude00\ud83d"#.utf8), Array(#"\ud83d\n"#.utf8),
        Array(#"\ud83d"#.utf8) + [0xFF], Array("a".utf8), Array(#"\u00e9"#.utf8), Array(#"\\"#.utf8),
    ]

    /// Objects whose keys and strings are drawn from invalid and cut-short
    /// UTF-8 and from escaped surrogates, paired and not: the compact text
    /// (`parsed_blob`) and the tape (manifests) read as Go reads them.
    @Test func textThatIsNotUnicodeIsReadAsGoReadsIt() async throws {
        var random = SeededGenerator(seed: 0x60_2026)
        func drawn() -> [UInt8] {
            (0..<Int.random(in: 1...4, using: &random)).flatMap { _ in
                Self.pieces[Int.random(in: 0..<Self.pieces.count, using: &random)]
            }
        }
        var texts: [[UInt8]] = []
        for _ in 0..<1_500 {
            var text = Array(#"{""#.utf8) + drawn() + Array(#"":[""#.utf8) + drawn() + Array(#"",1],"k":""#.utf8)
            text += drawn() + Array(#""}"#.utf8)
            texts.append(text)
        }
        let go = try await GoReaders.readJSON(texts)
        var (wrong, repaired) = ([String](), 0)
        for (text, theirs) in zip(texts, go) {
            let expected = theirs.error == nil ? (try? JSONParser.parse(Array(theirs.json.utf8))).map(Value.init) : nil
            let parsed = (try? JSONParser.parse(text, reading: .asGo)).map(Value.init)
            let compacted = (try? JSONParser.compacted(text, reading: .asGo)).map(Value.init)
            let taped = (try? JSONTape.parse(text, reading: .asGo))?.withRoot { Self.value(of: $0) }
            if parsed != expected || compacted != expected || taped != expected {
                wrong.append("\(text): read \(String(describing: compacted)), Go's \(theirs.error ?? theirs.json)")
            }
            // What strict reading refuses, as before, Go reads.
            if (try? JSONParser.parse(text)) == nil && expected != nil { repaired += 1 }
        }
        #expect(wrong.isEmpty, "\(wrong.count): \(wrong.prefix(5))")
        #expect(repaired > 1_000)
    }
}
