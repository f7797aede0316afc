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

    /// A text written with a limit never takes its buffer past it: the
    /// append that would is dropped with every later one, and no text is
    /// made. A text within the limit is the one written without it.
    @Test func aTextOverItsLimitIsNotMadeAndItsBufferStopsAtTheLimit() {
        let long: JSONValue = .array(Array(repeating: "0123456789", count: 1000))
        let text = long.jsonText
        let within = EncodedJSON(writing: { JSONWriter.write(long, into: &$0) }, limit: text.utf8.count)
        #expect(within?.bytes == Array(text.utf8))
        #expect(EncodedJSON(writing: { JSONWriter.write(long, into: &$0) }, limit: text.utf8.count - 1) == nil)

        var out = OutputBytes(capacity: 16, limit: 100)
        for _ in 0..<30 { out.append("0123") }
        #expect(out.overflowed && out.count == 100)
        out.append(UInt8(ascii: "x"))
        #expect(out.count == 100)
        #expect(out.array() == Array(String(repeating: "0123", count: 25).utf8))
    }
}
