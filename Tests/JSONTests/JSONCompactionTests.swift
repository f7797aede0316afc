import TestFixtures
import Testing
@testable import JSON

/// The compact text `compacted` keeps, or its error.
private func compacted(_ text: [UInt8]) -> Result<[UInt8], JSONParseError> {
    Result { () throws(JSONParseError) -> [UInt8] in
        guard case .encoded(let kept) = try JSONParser.compacted(text) else { return [] }
        return kept.bytes
    }
}

/// What the writer writes for the tree of `text`, or the parser's error.
private func writtenFromTheTree(_ text: [UInt8]) -> Result<[UInt8], JSONParseError> {
    Result { () throws(JSONParseError) in JSONWriter.bytes(try JSONParser.parse(text)) }
}

@Suite struct JSONCompactionTests {
    /// Every sample, texts near each, and the parser's own cases: the text
    /// kept is what the writer writes for the parser's tree, byte for byte,
    /// or the error is the parser's.
    @Test func theTextKeptIsWhatTheWriterWritesForTheTree() {
        var accepted = 0
        let cases: [[UInt8]] =
            [
                "null", " true ", "[1,[2,{\"a\":[]}]]", "-1.5E-7", #"{"z":1,"a":2,"z":3}"#,
                #""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u0000""#, " \t\r\n{ \"a\" : [ 1 , 2 ] }\n", "[1,2,]", "{} {}",
            ].map { Array($0.utf8) }
        for (place, sample) in ManifestSamples.texts.enumerated() {
            let text = Array(sample.utf8)
            for variant in [text] + TextMutations.variants(of: text, count: 1000, seed: 2000 + UInt64(place)) + cases {
                let kept = compacted(variant)
                #expect(kept == writtenFromTheTree(variant), "\(String(decoding: variant, as: UTF8.self))")
                if case .success = kept { accepted += 1 }
            }
        }
        // Both outcomes are reached (else this would check little).
        #expect(accepted > 1_000 && accepted < 12_000, "\(accepted)")
    }

    /// A text of many small values is kept as text: the value reads back
    /// as the tree, and is charged its text, not a tree twelve times larger.
    @Test func aValueDenseTextIsKeptAsItsText() throws {
        let text = Array(("[" + Array(repeating: "0", count: 100_000).joined(separator: ",") + "]").utf8)
        let kept = try JSONParser.compacted(text)
        #expect(kept.memoryFootprint < 2 * text.count)
        #expect(try JSONParser.parse(text).memoryFootprint > 10 * text.count)
        #expect(kept.arrayValue?.count == 100_000)
    }
}
