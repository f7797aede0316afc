import Testing

@testable import JSON

/// A value kept as its compact text reads, compares and is written as the
/// value it is.
@Suite struct EncodedJSONTests {
    let value: JSONValue = ["s": "a\"b", "n": 12, "a": [true, nil], "o": ["k": "v"]]

    func encoded(_ value: JSONValue) -> JSONValue {
        .encoded(EncodedJSON { JSONWriter.write(value, into: &$0) })
    }

    @Test func itIsWrittenAsTheTextItHolds() {
        let inside: JSONValue = ["x": encoded(value), "y": [encoded(1)]]
        #expect(inside.jsonText == #"{"x":{"s":"a\"b","n":12,"a":[true,null],"o":{"k":"v"}},"y":[1]}"#)
        #expect(encoded(value).textLengthWithoutEscapes == value.jsonText.utf8.count)
    }

    @Test func itReadsAndComparesAsItsValue() {
        let text = encoded(value)
        #expect(text == value)
        #expect(value == text)
        #expect(text != encoded(["s": "other"]))
        #expect(text["o"]?["k"]?.stringValue == "v")
        #expect(text.objectValue?.keys == ["s", "n", "a", "o"])
        #expect(encoded(12).intValue == 12)
        #expect(encoded(nil).isNull)
        #expect(encoded([1]).kindName == "array")
        #expect(encoded("z").stringValue == "z")
    }

    @Test func itsFootprintIsItsText() {
        let text = encoded(value)
        let bytes = value.jsonText.utf8.count
        #expect(text.memoryFootprint == MemoryLayout<JSONValue>.stride + JSONValue.allocationOverhead + bytes)
        #expect(text.memoryFootprint < value.memoryFootprint)
    }
}
