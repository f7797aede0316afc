import FoundationEssentials

/// A descriptor's `data`, read as Go's `encoding/json` reads a `[]byte`
/// (`base64.StdEncoding`): whole groups of four, `=` only as the last one
/// or two characters, line breaks ignored. Foundation does the decoding;
/// it alone would also take `=` past the padding (`QUJD====`), which Go
/// refuses.
enum Base64Text {
    /// The decoded bytes; nil when Go would refuse the text.
    static func decode(_ utf8: UnsafeBufferPointer<UInt8>) -> Data? {
        var text = [UInt8]()
        text.reserveCapacity(utf8.count)
        for byte in utf8 where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") { text.append(byte) }
        guard text.count % 4 == 0 else { return nil }
        let padding = text.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2, text.dropLast(padding).allSatisfy({ $0 != UInt8(ascii: "=") }) else { return nil }
        return Data(base64Encoded: Data(text))
    }
}
