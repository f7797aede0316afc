import Glibc
import JSON

/// An entry's name (or a link's target) as text that keeps its bytes.
///
/// Names are bytes. Swift compares strings by canonical equivalence, and
/// decoding invalid UTF-8 replaces bytes: read as plain text, `café` with
/// a precomposed `é` and `café` with a combining accent were one name
/// (a whiteout of one hid the other, which the container still has), and
/// so were any two names with invalid bytes in the same places. A held
/// name keeps ASCII as it is and writes every other byte as one
/// private-use character (U+F780-U+F7FF), which no normalization changes:
/// two held names are equal exactly when their bytes are, and sort as
/// their bytes sort (as Go sorts a map's keys). `/` and `.`, which paths
/// are made of, are ASCII and read as before.
public enum ArchiveName {
    private static let base: UInt32 = 0xF700

    /// `bytes` held as a name.
    public static func held<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        let ascii = bytes.withContiguousStorageIfAvailable(isASCII) ?? bytes.allSatisfy { $0 < 0x80 }
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        var text = String.UnicodeScalarView()
        for byte in bytes {
            // U+F780-U+F7FF are scalars; the fallback is never taken.
            text.append(byte < 0x80 ? Unicode.Scalar(byte) : Unicode.Scalar(base + UInt32(byte)) ?? "\u{FFFD}")
        }
        return String(text)
    }

    /// A name given as text (a path a caller asks for) held as the
    /// archive's names are: by its UTF-8 bytes.
    public static func held(_ text: String) -> String {
        text.utf8.allSatisfy { $0 < 0x80 } ? text : held(Array(text.utf8))
    }

    /// The bytes a held name stands for, counted.
    public static func byteCount(_ name: String) -> Int { name.unicodeScalars.count }

    /// Whether a held name stands for at most `limit` bytes: without
    /// counting them when its UTF-8 is that short (a held byte is never
    /// shorter in UTF-8 than it stands for).
    public static func fits(_ name: String, in limit: Int) -> Bool {
        name.utf8.count <= limit || byteCount(name) <= limit
    }

    /// Whether two held names (or parts of them) are the same name: the
    /// same bytes, compared as bytes (`==` on text compares by canonical
    /// equivalence, and byte by byte through an iterator when it cannot).
    public static func same(_ a: Substring, _ b: Substring) -> Bool {
        let (x, y) = (a.utf8, b.utf8)
        guard x.count == y.count else { return false }
        // Native strings are contiguous; the iterator is the fallback.
        let compared = x.withContiguousStorageIfAvailable { left in
            y.withContiguousStorageIfAvailable { right in
                guard let first = left.baseAddress, let second = right.baseAddress else { return true }
                return memcmp(first, second, left.count) == 0
            }
        }
        if let compared = compared ?? nil { return compared }
        return x.elementsEqual(y)
    }

    /// Whether every byte is ASCII, eight at a time.
    private static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let raw = UnsafeRawBufferPointer(bytes)
        var at = 0
        var seen: UInt64 = 0
        while at + 8 <= raw.count {
            seen |= raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)
            at += 8
        }
        while at < raw.count {
            seen |= UInt64(raw[at])
            at += 1
        }
        return seen & 0x8080_8080_8080_8080 == 0
    }

    /// A held name as people and answers read it: its bytes as UTF-8, each
    /// byte of an invalid sequence as U+FFFD (as Go's `encoding/json`
    /// writes a name). Text that holds no name's byte is returned as it is.
    public static func readable(_ text: String) -> String {
        guard !text.utf8.allSatisfy({ $0 < 0x80 }),
            text.unicodeScalars.contains(where: { $0.value >= base + 0x80 && $0.value <= base + 0xFF })
        else {
            return text
        }
        var scalars = String.UnicodeScalarView()
        GoUTF8.forEachScalar(bytes(of: text)) { scalars.append($0) }
        return String(scalars)
    }

    /// The bytes a held name stands for (text that holds no name's byte:
    /// its UTF-8).
    public static func bytes(of name: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(name.utf8.count)
        for scalar in name.unicodeScalars {
            if scalar.value >= base + 0x80 && scalar.value <= base + 0xFF {
                bytes.append(UInt8(scalar.value - base))
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        return bytes
    }
}
