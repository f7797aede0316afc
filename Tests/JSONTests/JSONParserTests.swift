import Testing
@testable import JSON

private func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONParser.parse(bytes) }
private func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

private func rejects(_ text: String, _ reasonFragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    rejects(Array(text.utf8), reasonFragment, sourceLocation: sourceLocation)
}

private func rejects(_ bytes: [UInt8], _ reasonFragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let value = try JSONParser.parse(bytes)
        Issue.record("accepted \(value)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.reason.contains(reasonFragment), "\(error.reason)", sourceLocation: sourceLocation)
        // Only nesting is told apart from what the text is.
        #expect(error.isNestingLimit == (reasonFragment == "nesting"), sourceLocation: sourceLocation)
    }
}

@Suite struct JSONParserAcceptsValidText {
    @Test func scalarsAndContainers() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse("\"a\"") == .string("a"))
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object(JSONObject()))
        #expect(try parse("[1,[2,{\"a\":[]}]]") == [1, [2, ["a": []]]])
    }

    @Test func numbersKeepTheirExactText() throws {
        for text in ["12345678901234567890", "1.10", "-0", "0.0", "1e400", "-1.5E-7", "2E+3", "0"] {
            #expect(try parse(text) == .number(text))
            #expect(try parse(text).jsonText == text)
        }
    }

    @Test func objectsKeepKeyOrder() throws {
        let value = try parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(value.jsonText == #"{"z":1,"a":2,"m":3}"#)
    }

    @Test func duplicateKeysLookUpTheLastOne() throws {
        let value = try parse(#"{"a":1,"a":2}"#)
        #expect(value["a"] == .number("2"))
    }

    @Test func escapesAndSurrogatePairsDecode() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{c}\n\r\t"))
        #expect(try parse(#""\u00e9\u4e2d""#) == .string("é中"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
    }

    @Test func rawUTF8StringsAreKept() throws {
        #expect(try parse("\"héllo 中文 😀\"") == .string("héllo 中文 😀"))
    }

    @Test func whitespaceAroundTokensIsAllowed() throws {
        #expect(try parse(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n") == ["a": [1, 2]])
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = JSONParser.defaultMaxDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        _ = try parse(text)
    }
}

@Suite struct JSONParserRejectsInvalidText {
    @Test func trailingCommas() {
        rejects("[1,2,]", "trailing comma")
        rejects(#"{"a":1,}"#, "trailing comma")
        rejects("[,]", "unexpected")
    }

    @Test func invalidEscapes() {
        rejects(#""\x""#, "invalid escape")
        rejects(#""\u12""#, "\\u")
        rejects(#""\uZZZZ""#, "\\u")
        rejects(#""\'""#, "invalid escape")
    }

    @Test func loneSurrogates() {
        rejects(#""\ud800""#, "lone surrogate")
        rejects(#""\udc00""#, "lone surrogate")
        rejects(#""\ud800\u0041""#, "lone surrogate")
        rejects(#""\ud800x""#, "lone surrogate")
    }

    @Test func invalidUTF8() {
        rejects([0x22, 0xFF, 0x22], "UTF-8")
        rejects([0x22, 0xC0, 0x80, 0x22], "UTF-8")  // overlong NUL
        rejects([0x22, 0xE4, 0xB8, 0x22], "UTF-8")  // truncated sequence
        rejects([0x22, 0xED, 0xA0, 0x80, 0x22], "UTF-8")  // encoded surrogate
        rejects([0x22, 0x5C, 0x6E, 0xFF, 0x22], "UTF-8")  // after an escape
        rejects([0xEF, 0xBB, 0xBF, 0x7B, 0x7D], "unexpected")  // BOM
    }

    @Test func controlCharactersInStrings() {
        rejects("\"a\nb\"", "control character")
        rejects("\"\t\"", "control character")
    }

    @Test func badNumbers() {
        rejects("01", "leading zero")
        rejects("-", "invalid number")
        rejects("1.", "fraction")
        rejects(".5", "unexpected")
        rejects("1e", "exponent")
        rejects("+1", "unexpected")
        rejects("NaN", "unexpected")
        rejects("0x10", "after the JSON value")
    }

    @Test func structuralErrors() {
        rejects("", "empty")
        rejects("   ", "end of input")
        rejects("[1 2]", "expected ','")
        rejects(#"{"a" 1}"#, "expected ':'")
        rejects(#"{1:2}"#, "string key")
        rejects("[1", "end of input")
        rejects(#""abc"#, "unterminated")
        rejects("tru", "literal")
        rejects("nul", "literal")
        rejects("{} {}", "after the JSON value")
    }

    @Test func nestingBeyondTheLimit() {
        let depth = JSONParser.defaultMaxDepth + 1
        rejects(String(repeating: "[", count: depth) + String(repeating: "]", count: depth), "nesting")
        rejects(String(repeating: #"{"a":"#, count: 100_000), "nesting")
    }

    @Test func errorsSayWhere() {
        do {
            _ = try JSONParser.parse("[1,2,]")
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 5)
        }
    }
}
