import Foundation

/// Builds tar archives for fixtures: ustar headers, with a PAX `path`
/// record or a GNU long-name entry for names over 100 bytes.
public struct TarBuilder {
    public enum LongNames: Sendable { case pax, gnu }

    public private(set) var bytes: [UInt8] = []
    private let longNames: LongNames
    private let nameBytes: @Sendable (String) -> [UInt8]

    /// `nameBytes`: the bytes each entry's name and link target are written
    /// as (their UTF-8, unless a test writes names that are not UTF-8).
    public init(longNames: LongNames = .pax, nameBytes: @escaping @Sendable (String) -> [UInt8] = { Array($0.utf8) }) {
        self.longNames = longNames
        self.nameBytes = nameBytes
    }

    /// Adds a regular file.
    public mutating func file(_ name: String, _ contents: String) {
        file(name, Array(contents.utf8))
    }

    public mutating func file(_ name: String, _ contents: [UInt8]) {
        entry(name, type: "0", contents: contents)
    }

    public mutating func directory(_ name: String) {
        entry(name.hasSuffix("/") ? name : name + "/", type: "5", contents: [])
    }

    public mutating func symlink(_ name: String, to target: String) {
        entry(name, type: "2", contents: [], linkName: target)
    }

    public mutating func hardlink(_ name: String, to target: String) {
        entry(name, type: "1", contents: [], linkName: target)
    }

    /// A PAX extended header (`x`, or `g` when `global`) whose body is `records`, verbatim: for
    /// crafted archives (huge sizes, lying record lengths).
    public mutating func paxHeader(_ records: [UInt8], global: Bool = false) {
        append(header("PaxHeaders/x", type: global ? "g" : "x", size: records.count), records)
    }

    /// A GNU long-name entry (`L`) for the entry after it, whatever its length.
    public mutating func gnuLongName(_ name: String) {
        append(header("././@LongLink", type: "L", size: name.utf8.count + 1), Array(name.utf8) + [0])
    }

    /// A header of `type` whose size field says `declaredSize`, with no
    /// data after it: for kinds that hold none (devices, FIFOs, links).
    public mutating func header(_ name: String, type: Character, declaredSize: Int) {
        append(header(name, type: type, size: declaredSize), [])
    }

    /// One well-formed PAX record, `"<length> key=value\n"`.
    public static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let record = " \(key)=\(value)\n"
        var length = record.utf8.count + 1
        while String(length).utf8.count + record.utf8.count != length { length += 1 }
        return Array("\(length)\(record)".utf8)
    }

    /// A regular file's header whose size field is base-256 `size`, with
    /// `contents` after it (which need not be that long).
    public mutating func file(_ name: String, base256Size size: UInt64, contents: [UInt8] = []) {
        var h = header(name, type: "0", size: 0)
        h[124] = 0x80
        for i in 0..<8 { h[128 + i] = UInt8(truncatingIfNeeded: size >> (8 * (7 - i))) }
        for i in 125..<128 { h[i] = 0 }
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = String(h.reduce(0) { $0 + Int($1) }, radix: 8)
        for (i, b) in (String(repeating: "0", count: 6 - sum.count) + sum).utf8.enumerated() { h[148 + i] = b }
        h[154] = 0
        append(h, contents)
    }

    /// The archive with its two closing zero blocks.
    public var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    private mutating func entry(_ text: String, type: Character, contents: [UInt8], linkName: String = "") {
        let name = nameBytes(text)
        var headerName = name
        if name.count > 100 {
            switch longNames {
            case .pax:
                let record = Array(" path=".utf8) + name + [UInt8(ascii: "\n")]
                var length = record.count + 1
                while String(length).utf8.count + record.count != length { length += 1 }
                let lengthed = Array(String(length).utf8) + record
                append(header(Array("PaxHeaders/x".utf8), type: "x", size: lengthed.count, linkName: []), lengthed)
            case .gnu:
                append(header(Array("././@LongLink".utf8), type: "L", size: name.count + 1, linkName: []), name + [0])
            }
            headerName = Array(name.suffix(90))
        }
        append(header(headerName, type: type, size: contents.count, linkName: nameBytes(linkName)), contents)
    }

    private mutating func append(_ header: [UInt8], _ contents: [UInt8]) {
        bytes += header + contents
        bytes += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    private func header(_ name: String, type: Character, size: Int, linkName: String = "") -> [UInt8] {
        header(Array(name.utf8), type: type, size: size, linkName: Array(linkName.utf8))
    }

    private func header(_ name: [UInt8], type: Character, size: Int, linkName: [UInt8]) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put<Bytes: Collection<UInt8>>(_ bytes: Bytes, at offset: Int, width: Int) {
            for (i, b) in bytes.prefix(width).enumerated() { h[offset + i] = b }
        }
        func put(_ text: String, at offset: Int, width: Int) { put(text.utf8, at: offset, width: width) }
        func octal(_ value: Int, at offset: Int, width: Int) {
            put(
                String(repeating: "0", count: max(0, width - 1 - String(value, radix: 8).count))
                    + String(value, radix: 8),
                at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(0o644, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(0, at: 136, width: 12)
        put(String(type), at: 156, width: 1)
        put(linkName, at: 157, width: 100)
        put("ustar\u{0}00", at: 257, width: 8)
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = h.reduce(0) { $0 + Int($1) }
        octal(sum, at: 148, width: 7)
        return h
    }
}
