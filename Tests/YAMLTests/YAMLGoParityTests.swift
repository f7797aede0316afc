import Foundation
import JSON
import Testing
import TestFixtures
@testable import YAML

/// The server's YAML (and JSON) to JSON conversion against
/// sigs.k8s.io/yaml's `YAMLToJSON` over go-yaml v2, which the original
/// builtins convert files with (`Tests/GoReaders`): on crafted
/// documents and on thousands of mutations of ordinary ones, both must
/// fail, or both give the same JSON value. A file that converts to another
/// value is one a policy reads otherwise than the original did.
@Suite struct YAMLGoParity {
    typealias Value = ComparedValue

    /// Compares each document; returns how many were refused as ambiguous
    /// (`FlowScanCheck`: a failure of the call, whatever Go reads), which
    /// are the only ones that may differ.
    @discardableResult
    private static func compare(_ documents: [[UInt8]], _ comment: (Int) -> String) async throws -> Int {
        let go = try await GoReaders.convertYAML(documents)
        var ambiguous = 0
        for (place, document) in documents.enumerated() {
            let converted = Result { () throws(YAMLError) in try YAMLToJSON.convert(document) }
            if case .failure(let error) = converted, error.isAmbiguous {
                ambiguous += 1
                continue
            }
            let ours = try? converted.get()
            let theirs = go[place].error == nil ? try? JSONParser.parse(Array(go[place].json.utf8)) : nil
            if ours.map(Value.init) != theirs.map(Value.init) {
                Issue.record(
                    "\(comment(place)): ours \(ours?.jsonText ?? "an error (\(converted))"), Go's \(go[place].error ?? go[place].json)"
                )
            }
        }
        return ambiguous
    }

    static let crafted: [String] = [
        "a: yes", "a: on", "a: 0777", "a: 0o17", "a: 1_000", "a: 0x1F", "a: .inf", "a: 1e400", "a: ~", "a: null",
        "a: [1, 2]", "? [a]\n: b", "a: &x 1\nb: *x", "<<: {a: 1}\nb: 2", "a: 1\n<<: {a: 2}", "<<: {a: 1}\na: 2",
        "<<: [{a: 1}, {a: 2, b: 3}]\nc: 4", "x: &m {a: 1}\ny:\n  <<: *m\n  b: 2", "x: &s [{a: 1}]\ny:\n  <<: *s",
        "<<: 1", "'<<': {a: 1}", "<<: [1]", "a: 1\na: 2", "a: !!str 1", "a: 2001-12-14", "1: a", "true: x",
        "a: 12345678901234567890", "a: 123456789012345678901234567890", "a: 1.0", "a: -0", "a: 0.1e1", "- a\n- b",
        "a: 'x'\n---\nb: 2", "", "a: !!binary aGVsbG8=", "a: !!binary |\n  aGVs\n  bG8=", "a: !!binary 'aGVsbG8'",
        "a: 1:20", "a: +1", "a: 010", "a: 08", "a: Y", "a: NO", "a: y", #"{"a": 1.0, "b": 1e400, "a": 2}"#,
        #"{"n": 12345678901234567890}"#, "[1e3, 1E-2, -0.0]", "a: !!int 3", "a: !!float 3", "a: !!bool yes",
        "a: !!null ''", "a: \"\\x41\\u00e9\"", "a: |\n  line\n  two\n", "a: >\n  folded\n  text\n", "? a\n",
        "a: [b, {c: d}]", "~: 1", "null: 1", "a: !!null ''", "a: !!int \"3\"", "a: !!float '3'", "a: !!bool 'True'",
        "a: !!timestamp 2001-12-14T21:59:43.10-05:00", "a: !!timestamp 2001-2-30", "a: !!timestamp 20011214",
        "a: !!float 12345678901234567890", "a: !foo 3", "a: !!int [1]", "a: {b: [c, d]}", "a: b: c", "- - - a",
        "a:\n- b\n- c",
        // Keys and anchors told apart by their bytes: `K` and the Kelvin
        // sign, `é` precomposed and with a combining accent.
        "allowK: false\nallow\u{212A}: true", "caf\u{E9}: 1\ncafe\u{301}: 2", "a: &caf\u{E9} 1\nb: *cafe\u{301}",
        "a: &caf\u{E9} 1\nb: *caf\u{E9}",
        // A JSON file's repeated key: once, with its last value.
        #"{"a":1,"a":2}"#, #"{"x":{"a":1},"x":{"b":2}}"#, #"{"\u0061":1,"a":2,"b":3}"#, #"{"a":1,"b":2,"a":3}"#,
        #"[{"k":1,"k":[{"k":2,"k":3}]}]"#,
    ]

    @Test func craftedDocumentsConvertAsGoConvertsThem() async throws {
        try await Self.compare(Self.crafted.map { Array($0.utf8) }) { Self.crafted[$0].debugDescription }
    }

    /// JSON files that go-yaml, reading them as YAML, reads otherwise than
    /// JSON or not at all: escapes (`\/`, surrogate pairs), characters
    /// YAML does not print or reads as line breaks (NEL, LS), a key that
    /// ends on another line or past 1,024 characters, a tab before the
    /// text; and YAML that libyaml reads otherwise than go-yaml: `\/` and
    /// `%YAML 1.2` (go-yaml fails), characters of several bytes before a
    /// flow collection (libyaml's marks count characters).
    static let charactersReadOtherwise: [String] = {
        var texts = [
            #"{"a":"\/"}"#, #"{"\/":1}"#, #"{"a":"\uD83D\uDE00"}"#, #"{"a":"\udfff"}"#, "{\"a\":\"x\u{85}y\"}",
            "{\"a\":\"\u{7F}\"}", "{\"a\":\"\u{80}\"}", "{\"a\":\"\u{FFFE}\"}", "{\"a\":\"x\u{2028}y\"}",
            "{\"a\u{2028}b\": 1}", "{\"a\u{85}b\": 1}", "{\"a\"\n: 1}", "{\"a\"\r: 1}", "{\"a\": {\"b\"\r\n: 1}}",
            "{\n\"a\"\n:\n1\n}", "{\"a\":\n1}", "\t{\"a\":1}", "{\t\"a\":\t1}", "{\"a\":1}\t\n", "a: \"\\/\"",
            "a: '\\/'",
            "a: x\\/", "a: \"\\\\/\"", "\u{E9}\u{E9}: \"\\/\"", "a: \"x\\\n  \\/y\"", "? \"\\/\"\n: 1", "a: |\n  \\/\n",
            "%YAML 1.2\n---\na: 1", "%YAML 1.1\n---\na: 1", "a: 1\n---\n%YAML 1.2\n---\nb: 1", "\u{FEFF}{\"a\":1}",
            "{\"a\":\"\u{FEFF}\"}", "\u{FEFF}\u{FEFF}a: 1", "a:\n  \u{FEFF}b: 2",
        ]
        for length in [1_021, 1_022, 1_023, 1_024, 2_000] {
            let key = String(repeating: "k", count: length)
            texts += ["{\"\(key)\": 1}", "[{\"a\": 1, \"\(key)\":2}]", "\(key): 1"]
            texts.append("{\"\(String(repeating: "\u{E9}", count: length))\": 1}")
        }
        return texts
    }()

    @Test func charactersTheReadersMayReadOtherwiseConvertAsGoConvertsThem() async throws {
        let texts = Self.charactersReadOtherwise
        let ambiguous = try await Self.compare(texts.map { Array($0.utf8) }) {
            "\(texts[$0].prefix(80).debugDescription) (\(texts[$0].utf8.count) bytes)"
        }
        #expect(ambiguous == 0)
    }

    /// Where libyaml and go-yaml read a document's characters otherwise:
    /// refused, a failure of the call, never a file left out. `\'` is `'`
    /// to go-yaml and an error to libyaml; a byte-order mark starting a
    /// line is skipped by libyaml and a character to go-yaml; `é: [x?y]`
    /// is `FlowScanCheck`'s `[x?y]` after characters of two bytes.
    @Test(arguments: [
        "a: \"\\'\"", "{\"a\":\"\\'\"}", "\u{E9}\u{E9}: \"it\\'s\"", "a: 1\n\u{FEFF}b: 2", "a: 1\n\u{FEFF}",
        "a: 1\r\n\u{FEFF}b: 2", "\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}: [x?y]", "\u{1F600}\u{1F600}\u{1F600}: [x?y]",
        "\u{FEFF}a: [x?y]", "\u{E9}\u{E9}\u{E9}: !!int[1]",
    ])
    func charactersTheReadersReadOtherwiseAreRefused(document: String) throws {
        #expect { try YAMLToJSON.convert(Array(document.utf8)) } throws: { ($0 as? YAMLError)?.isAmbiguous == true }
    }

    /// A document in UTF-16 (told by its byte-order mark) is read by its
    /// characters too: converted as Go converts it, and refused where the
    /// scanners part after characters of several bytes.
    @Test func documentsInUTF16AreReadByTheirCharacters() async throws {
        func utf16(_ text: String, bigEndian: Bool) -> [UInt8] {
            text.utf16.reduce(into: bigEndian ? [0xFE, 0xFF] : [0xFF, 0xFE]) { bytes, unit in
                bytes += bigEndian ? [UInt8(unit >> 8), UInt8(unit & 0xFF)] : [UInt8(unit & 0xFF), UInt8(unit >> 8)]
            }
        }
        for bigEndian in [false, true] {
            let documents = ["a: 1\nb: caf\u{E9} \u{1F600}\n", "a: \"\\/\"\n"].map { utf16($0, bigEndian: bigEndian) }
            #expect(try await Self.compare(documents) { "\(documents[$0])" } == 0)
            #expect {
                try YAMLToJSON.convert(utf16("\u{E9}\u{E9}\u{1F600}: [x?y]", bigEndian: bigEndian))
            } throws: { ($0 as? YAMLError)?.isAmbiguous == true }
        }
    }

    /// Where libyaml's and go-yaml's scanners part inside flow
    /// collections: refused as ambiguous, a failure of the call (never a
    /// file left out), where before one read a value the other did not.
    @Test(arguments: [
        "a: [1e:, 2]", "a: [x?y]", "a: {k: t?ue}", "a: [1, !, 3]", "a: [!.5, -0.0]", "{\"count\":!2, \"ok\": true}",
        "{}sources: 1", "[a]\nb: c",
    ])
    func flowCollectionsTheScannersReadOtherwiseAreRefused(document: String) throws {
        #expect { try YAMLToJSON.convert(Array(document.utf8)) } throws: { ($0 as? YAMLError)?.isAmbiguous == true }
    }

    /// Flow collections both scanners read alike are not refused.
    @Test(arguments: ["a: [1, 2]", "a: {b: c, d: [e]}", "a: [\"x?y\", 'k:']", "a: [b: c]", "a: [!!str 1, 2]"])
    func flowCollectionsTheScannersReadAlikeAreConverted(document: String) async throws {
        #expect(throws: Never.self) { try YAMLToJSON.convert(Array(document.utf8)) }
        try await Self.compare([Array(document.utf8)]) { _ in document }
    }

    /// Ordinary documents (a Kubernetes object, a policy file, anchors and
    /// merges, block scalars, tags, flow collections, JSON) with one to
    /// three bytes changed: 3,000 documents. Each converts as Go converts
    /// it, or is refused as ambiguous (fewer than 1 in 10).
    @Test func mutatedDocumentsConvertAsGoConvertsThem() async throws {
        let ambiguous = try await Self.compareMutations(
            of: Self.samples, inserting: Array(":-?[]{},&*!|>'\"%@`#\n 0aA.<".utf8).map { [$0] }, seed: 1205)
        // Refusals are for the spellings where the scanners part: a byte
        // right after one of the tag sample's six tags, mostly (181 of
        // 3,000 with this seed); most mutations convert and are compared.
        #expect(ambiguous < 300, "\(ambiguous) of 3,000 refused as ambiguous")
    }

    /// The same documents with characters inserted that the readers may
    /// read otherwise than ASCII: of several bytes (libyaml's marks count
    /// characters), line breaks other than LF, byte-order marks, escapes
    /// (`\/`, `\'`), and characters YAML does not print: 3,000
    /// documents, each converted as Go converts it or refused as
    /// ambiguous.
    @Test func documentsWithCharactersTheReadersMayReadOtherwiseConvertAsGoConvertsThem() async throws {
        let inserts = [
            "\u{E9}", "\u{1F600}", "\u{85}", "\u{2028}", "\u{FEFF}", "\\/", "\\'", "\u{7F}", "\u{80}", "\t", "\r",
            "\r\n",
            "\\", "\"", "?", ":", "[", "{", "\n", " ",
        ].map { Array($0.utf8) }
        let ambiguous = try await Self.compareMutations(of: Self.samples, inserting: inserts, seed: 2612)
        #expect(ambiguous < 600, "\(ambiguous) of 3,000 refused as ambiguous")
    }

    /// 3,000 documents, each a sample with one to three places changed
    /// (an insert replacing a byte, an insert, a byte removed): how many
    /// were refused as ambiguous (the others are compared with Go's).
    private static func compareMutations(of samples: [String], inserting inserts: [[UInt8]], seed: UInt64)
        async throws -> Int
    {
        var generator = SeededGenerator(seed: seed)
        var documents: [[UInt8]] = []
        for round in 0..<3000 {
            var bytes = Array(samples[round % samples.count].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let place = Int.random(in: 0..<bytes.count, using: &generator)
                let insert = inserts[Int.random(in: 0..<inserts.count, using: &generator)]
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes.replaceSubrange(place..<place + 1, with: insert)
                case 1: bytes.insert(contentsOf: insert, at: place)
                default: bytes.remove(at: place)
                }
            }
            documents.append(bytes)
        }
        return try await Self.compare(documents) {
            "mutation \($0): \(String(decoding: documents[$0], as: UTF8.self).debugDescription)"
        }
    }

    static let samples = [
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n    app: web\n    tier: '1'\ndata:\n  key: value\n  n: 10\n  f: 1.5\n  b: yes\n",
        "defaults: &d\n  allowed: false\n  level: 3\nstrict:\n  <<: *d\n  allowed: true\nlist:\n  - *d\n  - x:\n    - 1\n    - 0x2\n",
        "rules:\n- name: 'r1'\n  match: \"a\\tb\"\n  values:\n  - 0o7\n  - 1e3\n  - .5\n  - -0.0\n  - ~\n- name: r2\n  text: |\n    block\n    text\n  folded: >\n    a\n    b\n",
        "a: !!int 3\nb: !!str 4\nc: !!binary aGVsbG8=\nd: !!timestamp 2001-12-14\ne: !!null ''\n? complex\n: key\n",
        "labels: {app: web, tier: '1'}\nvalues: [0x10, 0o7, 1e3, .5, -0.0, ~]\nnested: {x: [1, {y: z}]}\n",
        #"{"sources": [{"url": "https://x", "digest": "sha256:ab"}], "count": 2, "ok": true, "none": null}"#,
    ]
}
