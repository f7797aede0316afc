import Reasons

/// One entry of a tar archive, with the long-name extensions applied.
public struct TarEntry: Sendable, Equatable {
    /// What an entry is.
    public enum Kind: Sendable, Equatable {
        case file, directory, symlink, hardlink
        /// A GNU sparse file (old `S` entries, or PAX `GNU.sparse.*`
        /// records): its data is a map of holes, not the file, and is
        /// never read as the file.
        case sparse
        case other
    }

    /// The name as Go's `archive/tar` gives it (`TarReader`).
    public let name: String
    /// The bytes of data the entry holds in the archive (0 for the kinds
    /// that hold none, whatever their size field says).
    public let size: Int
    public let kind: Kind
    /// What a link points at, as Go gives it (the header's field, a PAX
    /// `linkpath`, a GNU long link name, the last one wins); empty for an
    /// entry that is not a link.
    public let linkName: String

    public init(name: String, size: Int, kind: Kind, linkName: String = "") {
        self.name = name
        self.size = size
        self.kind = kind
        self.linkName = linkName
    }
}

/// Reads a tar stream entry by entry: ustar, PAX extended headers and GNU
/// long names, as Go's `archive/tar` reads them. Go's reader is what the
/// original builtins and the runtimes that unpack layers (containerd,
/// containers/storage) use, so an entry read otherwise here would be a
/// file a policy sees where the image has another: names, sizes, which
/// header wins and what is an error all follow it (`TarReaderGoParity`
/// compares the two on crafted and mutated archives). Contents are read
/// only when asked for, so memory is bounded by what the caller keeps, not
/// by the archive's size.
public final class TarReader {
    /// Extended headers (PAX records, GNU long names) larger than this are
    /// refused (Go's limit for them too).
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
        // What the headers before an entry say of it: the last PAX header's
        // records (each replaces the one before), the last GNU long name.
        var pax: [String: String] = [:]
        var longName: String?
        var longLinkName: String?
        while true {
            guard let header = try reader.readBlock() else {
                // A stream that stops at a block boundary without the zero blocks:
                // accepted, as GNU tar and Go's archive/tar do.
                ended = true
                return nil
            }
            if header.allSatisfy({ $0 == 0 }) {
                // The end is a zero block followed by another or by the end
                // of the stream; anything else after one is not a tar (Go).
                ended = true
                guard let second = try reader.readBlock() else { return nil }
                guard second.allSatisfy({ $0 == 0 }) else {
                    throw ArchiveError.corrupt("a tar header after a zero block")
                }
                return nil
            }
            let format = try Self.format(of: header)
            try Self.checkNumericFields(header, format: format)
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
                switch type {
                case UInt8(ascii: "x"):
                    pax = try Self.paxRecords(body)
                case UInt8(ascii: "g"):
                    // Go returns a global header as an entry of its own, so
                    // what came before it applies to it, not to the next
                    // entry; runtimes ignore it, and so does this reader.
                    _ = try Self.paxRecords(body)
                    pax = [:]
                    longName = nil
                    longLinkName = nil
                case UInt8(ascii: "L"):
                    longName = Self.text(body[...])
                default:
                    longLinkName = Self.text(body[...])
                }
                continue
            default:
                return try entry(
                    header, format: format, type: type, size: size, pax: pax, longName: longName,
                    longLinkName: longLinkName)
            }
        }
    }

    /// The entry `header` begins, with what the headers before it said.
    private func entry(
        _ header: [UInt8], format: Format, type: UInt8, size: Int, pax: [String: String], longName: String?,
        longLinkName: String?
    ) throws(ArchiveError) -> TarEntry {
        try Self.mergeCheck(pax)
        // Go's order: the header's own name, the PAX path, the GNU long
        // name, then a PAX sparse file's own name.
        var name = Self.headerName(header, format: format)
        if let path = pax["path"], !path.isEmpty { name = path }
        if let longName, !longName.isEmpty { name = longName }
        // The same order for the link's target.
        var dataSize = size
        if let sizeText = pax["size"], !sizeText.isEmpty {
            guard let value = Self.goInt64(sizeText), value >= 0 else {
                throw ArchiveError.corrupt("invalid PAX size '\(sizeText.prefix(32))'")
            }
            dataSize = try Self.checkedSize(Int(value))
        }
        var kind: TarEntry.Kind
        switch type {
        case UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
        // Legacy archives mark a directory by its name's trailing slash.
        case 0: kind = name.hasSuffix("/") ? .directory : .file
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "2"): kind = .symlink
        case UInt8(ascii: "1"): kind = .hardlink
        case UInt8(ascii: "S"):
            // Old GNU sparse: a GNU header only, whose map may go on in
            // extension blocks that no size counts.
            guard format == .gnu else { throw ArchiveError.corrupt("a sparse tar entry in a header that is not GNU") }
            let map = try TarSparseMap.oldGNU(header) { () throws(ArchiveError) in
                guard let block = try reader.readBlock() else {
                    throw ArchiveError.corrupt("tar stream ends inside a sparse map")
                }
                return block
            }
            try map.check(storing: dataSize)
            kind = .sparse
        default: kind = .other
        }
        if Self.headerOnlyTypes.contains(type) || kind == .directory { dataSize = 0 }
        if kind != .sparse, let sparse = try Self.paxSparse(pax) {
            guard !(Self.headerOnlyTypes.contains(type) || kind == .directory) else {
                throw ArchiveError.corrupt("a sparse tar entry of a kind that holds no data")
            }
            let size = sparse.size ?? Int64(dataSize)
            if sparse.version1 {
                // The map is the first blocks of the entry's data.
                var left = dataSize
                let (map, blocks) = try TarSparseMap.pax1(size: size) { () throws(ArchiveError) -> [UInt8]? in
                    guard left >= 512 else { return nil }
                    left -= 512
                    return try reader.read(exactly: 512)
                }
                dataSize -= blocks * 512
                try map.check(storing: dataSize)
            } else {
                try TarSparseMap.pax0(pax, size: size).check(storing: dataSize)
            }
            kind = .sparse
            if !sparse.name.isEmpty { name = sparse.name }
        }
        if name.isEmpty { name = "." }
        // A link's target, in the same order: the header's, a PAX
        // `linkpath`, a GNU long link name.
        var linkName = ""
        if kind == .symlink || kind == .hardlink {
            linkName = Self.text(header[157..<257])
            if let path = pax["linkpath"], !path.isEmpty { linkName = path }
            if let longLinkName, !longLinkName.isEmpty { linkName = longLinkName }
        }
        guard ArchiveName.fits(name, in: Self.maxNameBytes) else {
            throw ArchiveError(
                .tooLarge, reason: .nameTooLong,
                message: "a tar entry name of \(ArchiveName.byteCount(name)) bytes (the limit is \(Self.maxNameBytes))")
        }
        remaining = dataSize
        padding = Self.padding(for: dataSize)
        guard ArchiveName.fits(linkName, in: Self.maxNameBytes) else {
            throw ArchiveError(
                .tooLarge, reason: .nameTooLong,
                message:
                    "a tar link name of \(ArchiveName.byteCount(linkName)) bytes (the limit is \(Self.maxNameBytes))")
        }
        return TarEntry(name: name, size: dataSize, kind: kind, linkName: linkName)
    }

    /// Hard and symbolic links, character and block devices, directories,
    /// FIFOs: they carry no data whatever the size field says (Go reads
    /// the next header right after them), nor does a legacy directory.
    private static let headerOnlyTypes: [UInt8] = Array("123456".utf8)

    /// A header's format, by its magic, as Go tells it.
    enum Format {
        /// POSIX ustar (and PAX): `ustar\0`; its prefix field is 155 bytes.
        case ustar
        /// Schily's star: ustar with `tar\0` at the end; a 131-byte prefix.
        case star
        /// GNU: `ustar  \0`; no prefix field (times are where it would be).
        case gnu
        /// Anything else: the original Unix format, no prefix.
        case v7
    }

    /// The format of `header`, once its checksum is right.
    static func format(of header: [UInt8]) throws(ArchiveError) -> Format {
        guard let stored = goOctal(header[148..<156]) else {
            throw ArchiveError.corrupt("tar header checksum is not a number (not a tar archive?)")
        }
        // The sum of the bytes, the checksum field read as eight spaces,
        // taken unsigned and signed (each byte of 128 or more is 256 less).
        var unsigned = 0
        var high = 0
        header.withUnsafeBufferPointer { bytes in
            for byte in bytes {
                unsigned &+= Int(byte)
                high &+= Int(byte >> 7)
            }
            for byte in bytes[148..<156] {
                unsigned &-= Int(byte)
                high &-= Int(byte >> 7)
            }
        }
        unsigned += 8 * Int(UInt8(ascii: " "))
        let signed = unsigned - 256 * high
        guard stored == Int64(unsigned) || stored == Int64(signed) else {
            throw ArchiveError.corrupt("tar header checksum mismatch (not a tar archive?)")
        }
        if header[257..<263].elementsEqual("ustar\u{0}".utf8) {
            return header[508..<512].elementsEqual("tar\u{0}".utf8) ? .star : .ustar
        }
        if header[257..<263].elementsEqual("ustar ".utf8) && header[263..<265].elementsEqual(" \u{0}".utf8) {
            return .gnu
        }
        return .v7
    }

    /// Refuses a header whose numeric fields Go cannot read (it fails the
    /// archive): mode, owner, group and time; the device numbers too past V7.
    /// Mode, owner, group, time; the device numbers; star's two times.
    private static let numericFields = [
        100..<108, 108..<116, 116..<124, 136..<148, 329..<337, 337..<345, 476..<488, 488..<500,
    ]

    static func checkNumericFields(_ header: [UInt8], format: Format) throws(ArchiveError) {
        let fields =
            format == .v7 ? numericFields.prefix(4) : format == .star ? numericFields[...] : numericFields.prefix(6)
        for field in fields where goNumeric(header[field]) == nil {
            throw ArchiveError.corrupt("a tar header field that is not a number")
        }
    }

    /// `prefix/name` as the header's format has it. A GNU header has no
    /// prefix, but one whose time fields are not numbers was written by an
    /// old Go, which put a prefix there: Go reads it back when it is ASCII.
    static func headerName(_ header: [UInt8], format: Format) -> String {
        let name = text(header[0..<100])
        var prefix = ""
        switch format {
        case .ustar: prefix = text(header[345..<500])
        case .star: prefix = text(header[345..<476])
        case .gnu:
            let times = [header[345..<357], header[357..<369]]
            if times.contains(where: { $0.first != 0 && goNumeric($0) == nil }) {
                let field = text(header[345..<500])
                if field.utf8.allSatisfy({ $0 < 0x80 }) { prefix = field }
            }
        case .v7: break
        }
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// A PAX sparse file's version (1.0, or 0.0 and 0.1), own name (empty
    /// when none) and size, or nil when the records do not make one: Go's
    /// three versions, or a map without a version; another version is a
    /// plain file.
    static func paxSparse(_ pax: [String: String]) throws(ArchiveError) -> (
        version1: Bool, name: String, size: Int64?
    )? {
        let major = pax["GNU.sparse.major"] ?? "", minor = pax["GNU.sparse.minor"] ?? ""
        let version1: Bool
        switch (major, minor) {
        case ("0", "0"), ("0", "1"): version1 = false
        case ("1", "0"): version1 = true
        case _ where !major.isEmpty || !minor.isEmpty: return nil
        case _ where !(pax["GNU.sparse.map"] ?? "").isEmpty: version1 = false
        default: return nil
        }
        var size: Int64?
        if let text = [pax["GNU.sparse.size"], pax["GNU.sparse.realsize"]].lazy.compactMap({ $0 }).first(where: {
            !$0.isEmpty
        }) {
            guard let value = goInt64(text) else { throw ArchiveError.corrupt("an invalid PAX sparse size") }
            size = value
        }
        return (version1, pax["GNU.sparse.name"] ?? "", size)
    }

    /// Refuses the PAX records Go refuses to merge into a header: numbers
    /// and times it cannot read (empty values keep the header's own).
    static func mergeCheck(_ pax: [String: String]) throws(ArchiveError) {
        for (key, value) in pax where !value.isEmpty {
            let valid: Bool
            switch key {
            case "uid", "gid", "size": valid = goInt64(value) != nil
            case "atime", "mtime", "ctime":
                let parts = value.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                valid =
                    goInt64(String(parts[0])) != nil
                    && (parts.count == 1 || parts[1].utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 })
            default: valid = true
            }
            guard valid else { throw ArchiveError.corrupt("an invalid PAX \(key) record") }
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

    /// A NUL-terminated name field, held as a name (`ArchiveName`).
    static func text(_ field: ArraySlice<UInt8>) -> String {
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return ArchiveName.held(field[field.startIndex..<end])
    }

    /// The size field, as Go reads it (octal, or base-256 when the high
    /// bit is set); negative or over `maxEntrySize` refused.
    static func size(of header: [UInt8]) throws(ArchiveError) -> Int {
        guard let value = goNumeric(header[124..<136]) else {
            throw ArchiveError.corrupt("tar size field is not a number")
        }
        guard value >= 0 else { throw ArchiveError.corrupt("negative tar size") }
        guard value <= Int64(maxEntrySize) else {
            throw ArchiveError(
                .tooLarge, reason: .entryTooLarge,
                message: "a tar entry declares \(value) bytes (the limit is \(maxEntrySize))")
        }
        return Int(value)
    }

    /// A numeric field as Go's `archive/tar` reads it: base-256 (two's
    /// complement) when its first byte's high bit is set, else octal text
    /// between spaces and NULs; nil where Go fails.
    static func goNumeric(_ field: ArraySlice<UInt8>) -> Int64? {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            let invert: UInt8 = first & 0x40 != 0 ? 0xFF : 0
            var value: UInt64 = 0
            for (place, byte) in field.enumerated() {
                var byte = byte ^ invert
                if place == 0 { byte &= 0x7F }
                guard value >> 56 == 0 else { return nil }
                value = value << 8 | UInt64(byte)
            }
            guard value >> 63 == 0 else { return nil }
            return invert == 0xFF ? ~Int64(value) : Int64(value)
        }
        return goOctal(field)
    }

    /// Octal text between spaces and NULs, as Go's `parseOctal` reads it
    /// (the checksum is only ever octal); nil where Go fails.
    static func goOctal(_ field: ArraySlice<UInt8>) -> Int64? {
        // Trimmed of spaces and NULs at both ends, then up to a NUL.
        var digits = field.drop { $0 == 0x20 || $0 == 0 }
        while let last = digits.last, last == 0x20 || last == 0 { digits = digits.dropLast() }
        if let nul = digits.firstIndex(of: 0) { digits = digits[..<nul] }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value >> 61 == 0 else { return nil }
            value = value << 3 | UInt64(byte - UInt8(ascii: "0"))
        }
        return Int64(bitPattern: value)
    }

    /// A decimal number as Go's `strconv.ParseInt` reads it into an
    /// `int64` (an optional sign, digits, in range); nil otherwise.
    static func goInt64(_ text: String) -> Int64? {
        var digits = Substring(text)
        let negative = digits.first == "-"
        if negative || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(negative ? "-" + digits : String(digits))
    }

    /// PAX records, `"<length> <key>=<value>\n"` repeated, as Go reads
    /// them: a record Go refuses fails the archive; the GNU sparse 0.0
    /// `offset`/`numbytes` pairs become one `GNU.sparse.map`.
    /// The PAX records whose values Go refuses a NUL in (in the others,
    /// the key may not hold one).
    private static let paxTextKeys: Set<String> = ["path", "linkpath", "uname", "gname"]
    /// The records that name an entry or a link's target.
    private static let paxNameKeys: Set<String> = ["path", "linkpath", "GNU.sparse.name"]

    static func paxRecords(_ body: [UInt8]) throws(ArchiveError) -> [String: String] {
        var records: [String: String] = [:]
        var sparseMap: [String] = []
        var index = 0
        while index < body.count {
            // The length is checked against what is left, never added first.
            guard let space = body[index...].prefix(21).firstIndex(of: UInt8(ascii: " ")),
                let length = goInt64(String(decoding: body[index..<space], as: UTF8.self)).map(Int.init),
                length >= 5, length > space - index + 1, length <= body.count - index,
                body[index + length - 1] == UInt8(ascii: "\n")
            else { throw ArchiveError.corrupt("invalid PAX record") }
            let record = body[(space + 1)..<(index + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")), equals > record.startIndex else {
                throw ArchiveError.corrupt("invalid PAX record")
            }
            let keyBytes = record[record.startIndex..<equals]
            let valueBytes = record[(equals + 1)...]
            let key = String(decoding: keyBytes, as: UTF8.self)
            // Names are held with their bytes (`ArchiveName`); other values are text.
            let value =
                paxNameKeys.contains(key)
                ? ArchiveName.held(valueBytes) : String(decoding: valueBytes, as: UTF8.self)
            guard !(paxTextKeys.contains(key) ? valueBytes.contains(0) : keyBytes.contains(0)) else {
                throw ArchiveError.corrupt("a PAX record with a NUL in it")
            }
            switch key {
            case "GNU.sparse.offset", "GNU.sparse.numbytes":
                let expected = sparseMap.count % 2 == 0 ? "GNU.sparse.offset" : "GNU.sparse.numbytes"
                guard key == expected, !valueBytes.contains(UInt8(ascii: ",")) else {
                    throw ArchiveError.corrupt("invalid PAX sparse map")
                }
                sparseMap.append(value)
            default:
                records[key] = value
            }
            index += length
        }
        if !sparseMap.isEmpty { records["GNU.sparse.map"] = sparseMap.joined(separator: ",") }
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
