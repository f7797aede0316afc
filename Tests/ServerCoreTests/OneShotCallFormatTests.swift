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
}
