import CYAML
import JSON
import Testing
import TestFixtures
@testable import YAML

/// `CharacterCheck.jsonIsReadAlike` against libyaml itself: a JSON file
/// read as JSON must be one libyaml (so go-yaml, which the parity tests
/// hold it to) reads too. Read as JSON, a key that ended on another line,
/// or past 1,024 characters, or a tab before the text was answered, where
/// the original's converter fails and leaves the file out.
@Suite struct CharacterCheckTests {
    /// Why libyaml cannot read the first document of `bytes`; nil when it
    /// can. Only its events are read: no value is made.
    static func libyamlRefusal(_ bytes: [UInt8]) -> String? {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { return "libyaml could not be initialised" }
        defer { yaml_parser_delete(parser) }
        return bytes.withUnsafeBufferPointer { buffer -> String? in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(parser, &event) == 1 else {
                    let problem = parser.pointee.problem.map { String(cString: $0) } ?? "invalid YAML"
                    return "\(problem) at line \(parser.pointee.problem_mark.line + 1)"
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT || event.type == YAML_DOCUMENT_END_EVENT { return nil }
            }
        }
    }

    /// Tabs before and after the text, and keys at the length where YAML
    /// stops taking them for keys: the check passes what libyaml reads.
    @Test(arguments: [
        "{}\n\t", "{}\t", "{}\t\n", "\t{}", " \t{}", "\n\t[]", "{}\r\t", "{\"a\":1}\n \t\n", "[1]\n ", "\t1",
        "{\"" + String(repeating: "k", count: 1_021) + "\":1}", "{\"" + String(repeating: "k", count: 1_022) + "\":1}",
        "{\"" + String(repeating: "k", count: 1_021) + "\" :1}",
        "{\"" + String(repeating: "\u{E9}", count: 1_022) + "\":1}",
        "{\"" + String(repeating: "\u{E9}", count: 1_023) + "\":1}",
        "{\"a\\u00e9" + String(repeating: "k", count: 1_012) + "\":1}",
        "{\"a\\u00e9" + String(repeating: "k", count: 1_013) + "\":1}",
    ])
    func theCheckPassesWhatLibyamlReads(text: String) {
        let bytes = Array(text.utf8)
        #expect(CharacterCheck.jsonIsReadAlike(bytes) == (Self.libyamlRefusal(bytes) == nil))
    }

    /// JSON texts (pretty and compact, keys of characters of one to four
    /// bytes, keys near 1,024 characters) with blanks, line breaks, tabs
    /// and long runs put in: every one the check passes, libyaml reads,
    /// and the check passes most that libyaml reads.
    @Test func jsonTheCheckPassesIsJSONLibyamlReads() {
        let samples = [
            #"{"apiVersion": "v1", "kind": "ConfigMap", "data": {"key": "value", "n": 10}, "list": [1, "two", {"x": null}]}"#,
            "{\n  \"caf\u{E9}\": [\n    \"\u{1F600}\",\n    {\"k\u{2028}\": 1}\n  ],\n  \"v\": \"a\u{2029}b\"\n}\n",
            "{\"" + String(repeating: "k", count: 1_010) + "\": {\"" + String(repeating: "\u{E9}", count: 1_015)
                + "\" : true}}",
            "[{\"a\":1},{\"b\":[2,3]},\"" + String(repeating: "\u{1F600}", count: 1_020) + "\"]",
        ]
        let inserts = ["\t", "\n", "\r", "\r\n", " ", "\u{2028}", "\u{E9}", String(repeating: "w", count: 8)].map {
            Array($0.utf8)
        }
        var random = SeededGenerator(seed: 0x750_2026)
        var (passed, refused, readByLibyaml, wrong) = (0, 0, 0, [String]())
        for round in 0..<8_000 {
            var bytes = Array(samples[round % samples.count].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let place = Int.random(in: 0...bytes.count, using: &random)
                bytes.insert(contentsOf: inserts[Int.random(in: 0..<inserts.count, using: &random)], at: place)
            }
            guard (try? JSONParser.compacted(bytes)) != nil else { continue }
            let refusal = Self.libyamlRefusal(bytes)
            if refusal == nil { readByLibyaml += 1 }
            if CharacterCheck.jsonIsReadAlike(bytes) {
                passed += 1
                if let refusal {
                    wrong.append("\(String(decoding: bytes, as: UTF8.self).debugDescription): \(refusal)")
                }
            } else {
                refused += 1
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count): \(wrong.prefix(5))")
        #expect(passed > 500 && refused > 500, "\(passed) passed, \(refused) refused")
        // What the check refuses and libyaml reads: none here, as none of
        // the texts has a character or escape go-yaml reads otherwise.
        #expect(readByLibyaml == passed, "libyaml read \(readByLibyaml), the check passed \(passed)")
    }
}
