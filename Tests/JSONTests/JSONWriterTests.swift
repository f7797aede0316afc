import Testing
@testable import JSON

@Suite struct JSONWriterOutput {
    @Test func slashIsNotEscaped() {
        #expect(JSONValue.string("a/b").jsonText == #""a/b""#)
    }

    @Test func quotesBackslashesAndControlCharactersAreEscaped() {
        #expect(JSONValue.string("\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}").jsonText == #""\"\\\n\r\t\b\f\u0001\u001f""#)
    }

    @Test func nonASCIIIsWrittenAsUTF8() {
        #expect(JSONWriter.bytes(.string("é")) == [0x22, 0xC3, 0xA9, 0x22])
    }

    @Test func containersAreCompactAndOrdered() {
        let value: JSONValue = ["b": [1, "x", nil, true], "a": ["c": false]]
        #expect(value.jsonText == #"{"b":[1,"x",null,true],"a":{"c":false}}"#)
    }

    @Test func parseThenWriteRoundTrips() throws {
        let text = #"{"n":12345678901234567890,"f":1.10,"s":"\u00e9\n","a":[{},[]],"t":true,"z":null}"#
        let value = try JSONParser.parse(text)
        #expect(value.jsonText == #"{"n":12345678901234567890,"f":1.10,"s":"é\n","a":[{},[]],"t":true,"z":null}"#)
        #expect(try JSONParser.parse(value.jsonText) == value)
    }

    @Test func objectSubscriptSetReplacesInPlaceOrAppends() {
        var object = JSONObject()
        object["a"] = 1
        object["b"] = 2
        object["a"] = 3
        #expect(JSONValue.object(object).jsonText == #"{"a":3,"b":2}"#)
        object["a"] = nil
        #expect(object.keys == ["b"])
    }

    @Test func outputPastTheFirstBufferIsWrittenWhole() {
        // Strings of every length from 0 to 599, some with escapes, grow the
        // writer's buffer many times over, by one byte and by long runs.
        var expected = "["
        var elements: [JSONValue] = []
        for length in 0..<600 {
            let plain = String(repeating: "x", count: length)
            let text = length % 7 == 0 ? plain + "\"\n" : plain
            elements.append(.string(text))
            if length > 0 { expected += "," }
            expected += length % 7 == 0 ? "\"" + plain + "\\\"\\n\"" : "\"" + plain + "\""
        }
        expected += "]"
        #expect(JSONValue.array(elements).jsonText == expected)
        var prefixed = Array("prefix:".utf8)
        JSONWriter.write(.array(elements), into: &prefixed)
        #expect(prefixed == Array(("prefix:" + expected).utf8))
    }

    @Test func textLengthWithoutEscapesIsTheCompactLengthOfUnescapedText() throws {
        let texts = [
            #"{"n":12345678901234567890,"f":1.10,"s":"é","a":[{},[],[1,2]],"t":true,"u":false,"z":null}"#,
            "[]", "{}", #""""#, "[null]", #"{"a":{"b":[{"c":"d"}]}}"#,
        ]
        for text in texts {
            let value = try JSONParser.parse(text)
            #expect(value.textLengthWithoutEscapes == JSONWriter.bytes(value).count, "\(text)")
        }
        // Escapes are not counted: the text of "\n" is 4 bytes, the measure 3.
        #expect(JSONValue.string("\n").textLengthWithoutEscapes == 3)
    }
}

/// Whatever a number holds, the writer's output is JSON.
@Suite struct JSONWriterNumbers {
    @Test(arguments: ["0", "-0", "12", "-1.5", "1e+21", "1.2345678901234569e+23", "1E-7", "12345678901234567890"])
    func validNumbersAreWrittenVerbatim(text: String) {
        #expect(JSONValue.number(text).jsonText == text)
    }

    @Test(arguments: ["i.nfe+2", "inf", "-inf", "nan", "", "01", "1.", ".5", "+1", "1e", "--1", "1 ", "0x10"])
    func anythingElseIsWrittenAsAString(text: String) throws {
        let written = JSONValue.array([.number(text)]).jsonText
        #expect(try JSONParser.parse(written) == [.string(text)])
    }
}
