import Reasons

/// One entry of a tar archive, with the long-name extensions applied.
public struct TarEntry: Sendable, Equatable {
    /// What an entry is.
    public enum Kind: Sendable, Equatable {
        case file, directory, symlink, hardlink, other
    }

    /// The name as the archive gives it (PAX `path` or GNU long name first).
    public let name: String
    public let size: Int
    public let kind: Kind
}

/// Reads a tar stream entry by entry: ustar, PAX extended headers and GNU
/// long names. Contents are read only when asked for, so memory is bounded
/// by what the caller keeps, not by the archive's size.
public final class TarReader {
    /// Extended headers (PAX records, GNU long names) larger than this are refused.
    public static let maxExtendedHeaderBytes = 1 << 20
    /// Entry names longer than this (in bytes) are refused: Linux's PATH_MAX.
    public static let maxNameBytes = 4096
    /// A declared entry size over this (1 TiB) is refused before anything is
    /// skipped or added: sizes come from the archive, which may lie.
    public static let maxEntrySize = 1 << 40

    private let reader: BufferedReader
    /// Bytes of the current entry not yet consumed, plus its padding.
    private var remaining = 0
    private var padding = 0
    private var ended = false

    public init(_ stream: any ByteStream) {
        reader = BufferedReader(stream)
    }

    /// The next entry, or nil at the end of the archive.
    public func next() throws(ArchiveError) -> TarEntry? {
        guard !ended else { return nil }
        // Both are at most maxEntrySize and 511: no overflow.
        try reader.skip(remaining + padding)
        remaining = 0
        padding = 0
        var paxPath: String?
        var paxSize: Int?
        var longName: String?
        while true {
            guard let header = try reader.readBlock() else {
                // A stream that stops at a block boundary without the zero blocks:
                // accepted, as GNU tar and Go's archive/tar do.
                ended = true
                return nil
            }
            if header.allSatisfy({ $0 == 0 }) {
                ended = true
                return nil
            }
            try Self.verifyChecksum(header)
            let size = try Self.size(of: header)
            let type = header[156]
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= Self.maxExtendedHeaderBytes else {
                    throw ArchiveError(
                        .tooLarge, reason: .entryTooLarge, message: "tar extended header of \(size) bytes")
                }
                let body = try reader.read(exactly: size)
                try reader.skip(Self.padding(for: size))
                if type == UInt8(ascii: "x") {
                    let records = try Self.paxRecords(body)
                    if let path = records["path"] { paxPath = path }
                    if let sizeText = records["size"] {
                        guard sizeText.utf8.count <= 20, let value = Int(sizeText), value >= 0 else {
                            throw ArchiveError.corrupt("invalid PAX size '\(sizeText.prefix(32))'")
                        }
                        paxSize = try Self.checkedSize(value)
                    }
                } else if type == UInt8(ascii: "L") {
                    longName = Self.text(body[...])
                }
                continue
            default:
                let entrySize = paxSize ?? size
                var name = paxPath ?? longName ?? Self.ustarName(header)
                if name.isEmpty { name = "." }
                guard name.utf8.count <= Self.maxNameBytes else {
                    throw ArchiveError(
                        .tooLarge, reason: .nameTooLong,
                        message: "a tar entry name of \(name.utf8.count) bytes (the limit is \(Self.maxNameBytes))")
                }
                let kind: TarEntry.Kind
                switch type {
                case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
                case UInt8(ascii: "5"): kind = .directory
                case UInt8(ascii: "2"): kind = .symlink
                case UInt8(ascii: "1"): kind = .hardlink
                default: kind = .other
                }
                // Links and directories carry no data whatever the size field says.
                let dataSize = (kind == .file || kind == .other) ? entrySize : 0
                remaining = dataSize
                padding = Self.padding(for: dataSize)
                return TarEntry(name: name, size: dataSize, kind: kind)
            }
        }
    }

    /// The current entry's contents; throws `entry_too_large` over `limit`
    /// (the entry can still be skipped with `next()`).
    public func readContents(limit: Int) throws(ArchiveError) -> [UInt8] {
        guard remaining <= limit else {
            throw ArchiveError(
                .tooLarge, reason: .entryTooLarge,
                message: "tar entry of \(remaining) bytes is over the limit of \(limit)")
        }
        let bytes = try reader.read(exactly: remaining)
        remaining = 0
        return bytes
    }

    static func padding(for size: Int) -> Int { (512 - size % 512) % 512 }

    /// `size` when it is within `maxEntrySize`.
    static func checkedSize(_ size: Int) throws(ArchiveError) -> Int {
        guard size >= 0, size <= maxEntrySize else {
            throw ArchiveError(
                .tooLarge, reason: .entryTooLarge,
                message: "a tar entry declares \(size) bytes (the limit is \(maxEntrySize))")
        }
        return size
    }

    /// ustar `prefix/name`, NUL-terminated fields.
    static func ustarName(_ header: [UInt8]) -> String {
        let name = text(header[0..<100])
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        guard isUstar else { return name }
        let prefix = text(header[345..<500])
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// A NUL-terminated field as text.
    static func text(_ field: ArraySlice<UInt8>) -> String {
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[field.startIndex..<end], as: UTF8.self)
    }

    /// The size field: octal text, or base-256 when the high bit is set.
    static func size(of header: [UInt8]) throws(ArchiveError) -> Int {
        let field = header[124..<136]
        if field[field.startIndex] & 0x80 != 0 {
            // Base-256; 0xFF first means a negative number, which no size is.
            guard field[field.startIndex] == 0x80 else { throw ArchiveError.corrupt("negative tar size") }
            var value = 0
            for byte in field.dropFirst() {
                guard value <= (Int.max >> 8) else { throw ArchiveError.corrupt("tar size field overflows") }
                value = value << 8 | Int(byte)
            }
            return try checkedSize(value)
        }
        return try checkedSize(try octal(field))
    }

    static func octal(_ field: ArraySlice<UInt8>) throws(ArchiveError) -> Int {
        var value = 0
        var seenDigit = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value < (Int.max >> 3) else { throw ArchiveError.corrupt("tar numeric field overflows") }
                value = value << 3 | Int(byte - UInt8(ascii: "0"))
                seenDigit = true
            case 0, UInt8(ascii: " "):
                if seenDigit { return value }
            default:
                throw ArchiveError.corrupt("invalid octal field in tar header")
            }
        }
        return value
    }

    static func verifyChecksum(_ header: [UInt8]) throws(ArchiveError) {
        let stored = try octal(header[148..<156])
        var unsigned = 0
        var signed = 0
        for (i, byte) in header.enumerated() {
            let b = (148..<156).contains(i) ? UInt8(ascii: " ") : byte
            unsigned += Int(b)
            signed += Int(Int8(bitPattern: b))
        }
        guard stored == unsigned || stored == signed else {
            throw ArchiveError.corrupt("tar header checksum mismatch (not a tar archive?)")
        }
    }

    /// PAX records: `"<length> <key>=<value>\n"` repeated.
    static func paxRecords(_ body: [UInt8]) throws(ArchiveError) -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < body.count {
            // The length is checked against what is left, never added first.
            guard let space = body[index...].prefix(21).firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: body[index..<space], as: UTF8.self)),
                length > space - index, length <= body.count - index, body[index + length - 1] == UInt8(ascii: "\n")
            else { throw ArchiveError.corrupt("invalid PAX record") }
            let record = body[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw ArchiveError.corrupt("invalid PAX record")
            }
            let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
            records[key] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            index += length
        }
        return records
    }
}

/// Whole reads and skips over a `ByteStream`, through one buffer.
final class BufferedReader {
    private let stream: any ByteStream
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 1)
    private var start = 0
    private var end = 0

    init(_ stream: any ByteStream) {
        self.stream = stream
    }

    deinit { buffer.deallocate() }

    /// Refills when empty; false at the end of the stream.
    private func fill() throws(ArchiveError) -> Bool {
        guard start == end else { return true }
        start = 0
        end = try stream.read(into: buffer)
        return end > 0
    }

    /// The next 512-byte block; nil at a clean end of stream.
    func readBlock() throws(ArchiveError) -> [UInt8]? {
        guard try fill() else { return nil }
        let block = try read(exactly: 512)
        return block
    }

    func read(exactly count: Int) throws(ArchiveError) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            guard try fill() else { throw ArchiveError.corrupt("tar stream ends inside an entry") }
            let take = min(count - result.count, end - start)
            result.append(contentsOf: buffer[start..<(start + take)])
            start += take
        }
        return result
    }

    func skip(_ count: Int) throws(ArchiveError) {
        var left = count
        while left > 0 {
            guard try fill() else { throw ArchiveError.corrupt("tar stream ends inside an entry") }
            let take = min(left, end - start)
            start += take
            left -= take
        }
    }
}
