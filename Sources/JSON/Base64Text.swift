import FoundationEssentials

/// Base64 as Go's `base64.StdEncoding` reads it, which its `encoding/json`
/// uses for a `[]byte` (a descriptor's `data`) and go-yaml for `!!binary`:
/// whole groups of four, `=` only as the last one or two characters, line
/// breaks ignored. Foundation does the decoding; it alone would also take
/// `=` past the padding (`QUJD====`), which Go refuses.
package enum Base64Text {
    /// The decoded bytes; nil when Go would refuse the text.
    package static func decode(_ utf8: UnsafeBufferPointer<UInt8>) -> Data? {
        var text = [UInt8]()
        text.reserveCapacity(utf8.count)
        for byte in utf8 where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") { text.append(byte) }
        guard text.count % 4 == 0 else { return nil }
        let padding = text.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2, text.dropLast(padding).allSatisfy({ $0 != UInt8(ascii: "=") }) else { return nil }
        return Data(base64Encoded: Data(text))
    }
}
