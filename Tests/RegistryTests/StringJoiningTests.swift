import Testing

@testable import Registry

@Suite struct StringJoiningTests {
    @Test func aJoinedStringIsItsPartsOneAfterAnother() {
        let parts = ["http", "://", "127.0.0.1:5000", "/v2/", "library/app", "/", "manifests/v1"]
        let joined = String(joining: parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6])
        #expect(joined == parts.joined())
        #expect(joined.utf8.count == parts.reduce(0) { $0 + $1.utf8.count })
    }

    @Test func partsOfAnyLengthAndScriptAreJoinedWhole() {
        // Empty parts, small (inline) and large strings, and non-ASCII text.
        let long = String(repeating: "é", count: 40)
        #expect(String(joining: "", "a", "", long, "🙂|", "") == "a" + long + "🙂|")
        #expect(String(joining: "") == "")
        #expect(String(joining: "only") == "only")
    }
}
