import JSON
import TestFixtures
import Testing
import YAML

@Suite struct YAMLToJSONTests {
    private func json(_ yaml: String) throws -> String {
        try YAMLToJSON.convert(Array(yaml.utf8)).jsonText
    }

    /// go-yaml v2's plain scalars, written as sigs.k8s.io/yaml writes them.
    @Test(arguments: [
        ("true", "true"), ("True", "true"), ("yes", "true"), ("Y", "true"), ("on", "true"), ("ON", "true"),
        ("false", "false"), ("no", "false"), ("N", "false"), ("Off", "false"),
        ("~", "null"), ("null", "null"), ("NULL", "null"), ("", "null"),
        ("42", "42"), ("-7", "-7"), ("+3", "3"), ("0x1F", "31"), ("0o17", "15"), ("017", "15"), ("0b101", "5"),
        ("1_000", "1000"), ("18446744073709551615", "18446744073709551615"),
        ("1.5", "1.5"), ("1.10", "1.1"), ("1e3", "1000"), (".5", "0.5"), ("-0.25", "-0.25"),
        ("1e21", "1e+21"), ("1.5e-7", "1.5e-7"), ("123456789012345678901234", "1.2345678901234569e+23"),
        ("2024-01-02", "\"2024-01-02\""), ("yes please", "\"yes please\""), ("0x", "\"0x\""), ("1.2.3", "\"1.2.3\""),
    ])
    func plainScalarsResolveAsGoYAMLV2(yaml: String, expected: String) throws {
        #expect(try json("v: \(yaml)") == #"{"v":\#(expected)}"#)
    }

    /// A file that is JSON is kept as its compact text, not as a tree: a
    /// value-dense file (a few hundred KB of gzip can hold 500 MiB of
    /// `[0,0,...]`) would otherwise hold twelve times its size.
    @Test func aJSONFileIsKeptAsItsCompactText() throws {
        let text = Array(("[ " + Array(repeating: "0", count: 100_000).joined(separator: ", ") + " ]").utf8)
        let converted = try YAMLToJSON.convert(text)
        guard case .encoded(let kept) = converted else {
            Issue.record("not kept as text: \(converted.kindName)")
            return
        }
        #expect(kept.bytes == JSONWriter.bytes(try JSONParser.parse(text)))
        #expect(converted.memoryFootprint < text.count)
    }

    @Test func quotedScalarsStayStrings() throws {
        #expect(try json("a: \"true\"\nb: '42'\nc: !!str 7") == #"{"a":"true","b":"42","c":"7"}"#)
    }

    /// Keys as sigs.k8s.io/yaml makes them: scalars' text, and no key for
    /// a null one (`~`, `null`, an empty `? `), which fails the document.
    @Test func mapKeysBecomeStringsAndANullKeyFails() throws {
        #expect(try json("1: a\ntrue: b\n0x10: c") == #"{"1":"a","true":"b","16":"c"}"#)
        for document in ["~: c", "null: c", "? \n: c"] {
            #expect(throws: YAMLError.self) { try json(document) }
        }
    }

    @Test func nestedStructuresAndAnchors() throws {
        let yaml = """
            base: &b
              image: x
              ports: [80, 443]
            copy: *b
            list:
              - one
              - {k: v}
            """
        #expect(
            try json(yaml)
                == #"{"base":{"image":"x","ports":[80,443]},"copy":{"image":"x","ports":[80,443]},"list":["one",{"k":"v"}]}"#
        )
    }

    @Test func onlyTheFirstDocumentCounts() throws {
        #expect(try json("---\na: 1\n---\nb: 2\n") == #"{"a":1}"#)
    }

    @Test func jsonInputKeepsNumbersVerbatim() throws {
        #expect(try json(#"{"n": 12345678901234567890, "f": 1.10}"#) == #"{"n":12345678901234567890,"f":1.10}"#)
    }

    @Test func invalidYAMLThrows() {
        #expect(throws: YAMLError.self) { try json("a: [1, 2\nb: }") }
        #expect(throws: YAMLError.self) { try json("v: .nan") }
    }

    @Test func aliasBombsAreRefused() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<9 {
            let refs = Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ")
            yaml += "a\(i): &a\(i) [\(refs)]\n"
        }
        #expect(throws: YAMLError.self) { try json(yaml) }
    }

    @Test func deepNestingIsRefused() {
        let yaml = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: YAMLError.self) { try YAMLToJSON.convert(Array(("a: " + yaml).utf8)) }
    }
}

/// Documents made to exhaust the converter: every one is refused with a
/// limit error (never a crash, never a huge answer), and the output is
/// always JSON.
@Suite struct HostileYAMLTests {
    private func limitError(_ yaml: [UInt8]) -> Bool {
        do {
            _ = try YAMLToJSON.convert(yaml)
            return false
        } catch {
            return error.isLimit
        }
    }

    @Test func aliasesOfALargeScalarAreBoundedByBytesNotNodes() throws {
        // 64 KiB anchored once, aliased 1,000 times: 71 KB in, 65 MB out.
        var yaml = "a: &big \"" + String(repeating: "x", count: 64 << 10) + "\"\nb:\n"
        for _ in 0..<1000 { yaml += "- *big\n" }
        #expect(limitError(Array(yaml.utf8)))
        // The same with 60 aliases (3.9 MB, within the 4 MiB allowance) is fine.
        var small = "a: &big \"" + String(repeating: "x", count: 64 << 10) + "\"\nb:\n"
        for _ in 0..<60 { small += "- *big\n" }
        #expect(try YAMLToJSON.convert(Array(small.utf8))["b"]?.arrayValue?.count == 60)
        // A large document may use aliases in proportion: 8 MB of text, 4 x 8 MB of aliases.
        var large = "a: &big \"" + String(repeating: "x", count: 8 << 20) + "\"\nb:\n"
        for _ in 0..<4 { large += "- *big\n" }
        #expect(try YAMLToJSON.convert(Array(large.utf8))["b"]?.arrayValue?.count == 4)
    }

    @Test func billionLaughsIsRefused() {
        var yaml = "a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
        for i in 1..<10 {
            yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        #expect(limitError(Array(yaml.utf8)))
    }

    @Test func aliasesCannotNestDeeperThanTheLimit() {
        // Each level is 10 deep and aliases the one before: depth 10 x 60 = 600.
        var yaml = "l0: &l0 " + String(repeating: "[", count: 10) + "x" + String(repeating: "]", count: 10) + "\n"
        for i in 1..<60 {
            yaml +=
                "l\(i): &l\(i) " + String(repeating: "[", count: 10) + "*l\(i - 1)" + String(repeating: "]", count: 10)
                + "\n"
        }
        #expect(limitError(Array(yaml.utf8)))
    }

    /// Each limit on its own, set small.
    @Test func eachLimitIsEnforced() throws {
        func refused(_ yaml: String, _ change: (inout YAMLToJSON.Limits) -> Void) -> Bool {
            var limits = YAMLToJSON.Limits()
            change(&limits)
            do {
                _ = try YAMLToJSON.convert(Array(yaml.utf8), limits: limits)
                return false
            } catch {
                return error.isLimit
            }
        }
        let nested = "a:\n  b:\n    c:\n      d: 1\n"
        #expect(refused(nested) { $0.maxDepth = 3 })
        #expect(!refused(nested) { $0.maxDepth = 4 })
        let list = "[" + Array(repeating: "x", count: 100).joined(separator: ", ") + "]"
        #expect(refused(list) { $0.maxNodes = 100 })
        #expect(!refused(list) { $0.maxNodes = 101 })
        #expect(refused(list) { $0.maxOutputBytes = 250 })
        #expect(!refused(list) { $0.maxOutputBytes = 500 })
        let aliased = "a: &x \"" + String(repeating: "y", count: 100) + "\"\nb: [*x, *x, *x]\n"
        #expect(
            refused(aliased) {
                $0.aliasAllowanceBytes = 200; $0.aliasAllowanceRatio = 1
            })
        #expect(
            !refused(aliased) {
                $0.aliasAllowanceBytes = 400; $0.aliasAllowanceRatio = 1
            })
    }

    @Test func floatsOutOfRangeStayStringsAsInGoYAMLV2() throws {
        let value = try YAMLToJSON.convert(Array("x: 1e400\nw: -1e400\nz: 1e-400\n".utf8))
        #expect(value.jsonText == #"{"x":"1e400","w":"-1e400","z":0}"#)
    }

    @Test func aMappingWithManyKeysConvertsInLinearTime() async throws {
        // 200,000 keys: quadratic lookups would take minutes. Seconds of
        // work: on a thread of its own, so the tests' task pool stays free.
        let outcome = await onThreadOfItsOwn {
            Result { () throws -> JSONValue in
                var yaml = ""
                for i in 0..<200_000 { yaml += "k\(i): \(i)\n" }
                yaml += "k5: again\n"
                return try YAMLToJSON.convert(Array(yaml.utf8))
            }
        }
        let value = try outcome.get()
        #expect(value.objectValue?.count == 200_000)
        #expect(value["k5"] == "again")
        #expect(value.objectValue?.keys.first == "k0")
    }
}
