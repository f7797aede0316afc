import JSON
import Testing

@Suite struct JSONObjectTests {
    @Test func anObjectMadeWithRoomStartsEmptyAndKeepsMembersInOrder() {
        var object = JSONObject(capacity: 2)
        #expect(object.isEmpty)
        #expect(object == JSONObject())
        // Past the room it was made with, too.
        for (index, key) in ["b", "a", "c"].enumerated() { object.append(key, .integer(index)) }
        #expect(object.keys == ["b", "a", "c"])
        #expect(JSONWriter.bytes(.object(object)) == Array(#"{"b":0,"a":1,"c":2}"#.utf8))
    }
}
