/// Finds, eight bytes at a time, where the plain part of JSON string
/// content ends: the first `"`, `\` or control character (below 0x20),
/// the bytes that the parser stops at and the writer escapes.
///
/// A word of eight bytes is tested for all three at once with the
/// "has a zero byte" test (`(v - 0x01..) & ~v & 0x80..`): a word with none
/// of them is passed over in about two instructions a byte, where a loop
/// over bytes takes twelve. The test can flag a byte after a true match
/// (a borrow), never a word without one, and a flagged word is looked at
/// byte by byte; so the answer is exactly the byte loop's.
package enum StringScan {
    /// The index of the first byte in `start..<end` of `base` that is `"`,
    /// `\` or below 0x20, or `end` if there is none. Every byte before it
    /// is OR-ed into `highBits` (bit 7 set: not all ASCII).
    @inline(__always)
    package static func plainEnd(
        _ base: UnsafePointer<UInt8>, from start: Int, to end: Int, highBits: inout UInt8
    ) -> Int {
        var index = start
        var seen: UInt64 = 0
        let raw = UnsafeRawPointer(base)
        while end - index >= 8 {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if mayHoldSpecial(word) { break }
            seen |= word
            index += 8
        }
        if seen & highs != 0 { highBits |= 0x80 }
        while index < end {
            let byte = base[index]
            if isSpecial(byte) { break }
            highBits |= byte
            index += 1
        }
        return index
    }

    /// `"`, `\` or a control character.
    @inline(__always)
    package static func isSpecial(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20
    }

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether `word` may hold a special byte: true whenever it does.
    @inline(__always)
    static func mayHoldSpecial(_ word: UInt64) -> Bool {
        let quotes = word ^ (ones &* 0x22)
        let backslashes = word ^ (ones &* 0x5C)
        let zeroQuote = (quotes &- ones) & ~quotes
        let zeroBackslash = (backslashes &- ones) & ~backslashes
        let control = (word &- ones &* 0x20) & ~word
        return (zeroQuote | zeroBackslash | control) & highs != 0
    }
}
