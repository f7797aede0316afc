import JSON
import Testing

@testable import ServerCore

@Suite struct OneShotCallFormat {
    @Test func resultsForATerminalAreIndentedAndStillTheSameJSON() throws {
        let value: JSONValue = ["a": [1, ["b": "c"]], "empty": [:], "list": [], "n": .null]
        let text = OneShotCall.indented(value)
        #expect(
            text
                == "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"c\"\n    }\n  ],\n  \"empty\": {},\n  \"list\": [],\n  \"n\": null\n}"
        )
        #expect(try JSONParser.parse(Array(text.utf8)) == value)
    }

    /// A terminal may take U+009B for the start of an escape sequence: a
    /// manifest's annotation cannot send it one. JSON escapes the C0
    /// controls; DEL and the C1 controls are escaped too, and the text
    /// stays the same JSON.
    @Test func resultsForATerminalEscapeDELAndTheC1Controls() throws {
        let value: JSONValue = ["k\u{9B}": "a\u{1B}[31m\u{7F}\u{80}\u{9B}31m\u{9F}\u{A0}é"]
        let text = OneShotCall.forTerminal(OneShotCall.indented(value))
        #expect(!text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        #expect(!text.unicodeScalars.contains { (0x7F...0x9F).contains($0.value) })
        // U+00A0 and beyond are text, written as they are.
        #expect(text.contains(#"\u001b[31m\u007f\u0080\u009b31m\u009f"# + "\u{A0}é"), "\(text)")
        #expect(try JSONParser.parse(Array(text.utf8)) == value)
        #expect(OneShotCall.forTerminal("{\"a\": \"b\"}") == "{\"a\": \"b\"}")
    }
}
