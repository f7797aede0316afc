/// A GNU sparse file's map, checked as Go's `archive/tar` checks it: the
/// data fragments it lists must be in order, within the file's size, and
/// add up to exactly the data the entry stores. Go fails the archive on a
/// map that is not so (at the header, or when the data is read, as every
/// runtime unpacking a layer reads it), so this reader fails it too. The
/// file's data itself is never read (`TarEntry.Kind.sparse`).
struct TarSparseMap {
    /// The file's size as the map gives it (its holes included).
    private let size: Int64
    /// Where the last fragment ended, and the bytes of all fragments.
    private var end: Int64 = 0
    private var stored: Int64 = 0
    private var valid = true

    init(size: Int64) {
        self.size = size
        valid = size >= 0
    }

    /// Adds a fragment: `length` bytes of data at `offset`.
    mutating func add(offset: Int64, length: Int64) {
        guard valid, offset >= 0, length >= 0, offset <= Int64.max - length, offset + length <= size,
            end <= offset
        else {
            valid = false
            return
        }
        end = offset + length
        stored += length
    }

    /// Refuses the map unless it is valid and its fragments are exactly the
    /// `physical` bytes the entry stores after the map.
    func check(storing physical: Int) throws(ArchiveError) {
        guard valid else { throw ArchiveError.corrupt("an invalid tar sparse map") }
        guard stored == Int64(physical) else {
            throw ArchiveError.corrupt("a tar sparse file whose data is not what its map says")
        }
    }

    /// The map of an old GNU sparse entry (`S`): in the header, then in
    /// extension blocks read through `nextBlock`, which no size counts.
    static func oldGNU(
        _ header: [UInt8], nextBlock: () throws(ArchiveError) -> [UInt8]
    ) throws(ArchiveError) -> TarSparseMap {
        guard let realSize = TarReader.goNumeric(header[483..<495]) else {
            throw ArchiveError.corrupt("an invalid tar sparse size")
        }
        var map = TarSparseMap(size: realSize)
        var block = header
        var (first, slots, extendedAt) = (386, 4, 482)
        while true {
            for slot in 0..<slots {
                let at = first + slot * 24
                // An empty slot ends the block's list (as GNU and BSD tar read it).
                guard block[at] != 0 else { break }
                guard let offset = TarReader.goNumeric(block[at..<(at + 12)]),
                    let length = TarReader.goNumeric(block[(at + 12)..<(at + 24)])
                else { throw ArchiveError.corrupt("an invalid tar sparse map") }
                map.add(offset: offset, length: length)
            }
            guard block[extendedAt] != 0 else { return map }
            block = try nextBlock()
            (first, slots, extendedAt) = (0, 21, 504)
        }
    }

    /// The map of a PAX sparse entry of version 0.0 or 0.1: in its records.
    static func pax0(_ pax: [String: String], size: Int64) throws(ArchiveError) -> TarSparseMap {
        guard let count = TarReader.goInt64(pax["GNU.sparse.numblocks"] ?? ""), count >= 0, count < Int64.max / 2
        else { throw ArchiveError.corrupt("an invalid tar sparse map") }
        let text = pax["GNU.sparse.map"] ?? ""
        let numbers = text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false)
        guard Int64(numbers.count) == 2 * count else { throw ArchiveError.corrupt("an invalid tar sparse map") }
        var map = TarSparseMap(size: size)
        var place = 0
        while place + 1 < numbers.count {
            guard let offset = TarReader.goInt64(String(numbers[place])),
                let length = TarReader.goInt64(String(numbers[place + 1]))
            else { throw ArchiveError.corrupt("an invalid tar sparse map") }
            map.add(offset: offset, length: length)
            place += 2
        }
        return map
    }

    /// The map of a PAX sparse entry of version 1.0: decimal lines at the
    /// start of its data, in whole blocks read through `nextBlock` (nil
    /// past the entry's data); returns the map and the blocks it took.
    static func pax1(
        size: Int64, nextBlock: () throws(ArchiveError) -> [UInt8]?
    ) throws(ArchiveError) -> (map: TarSparseMap, blocks: Int) {
        // Numbers are parsed as their bytes arrive and only those not yet
        // taken are kept (one block's worth at most): a hostile map of
        // endless lines, or one endless line, holds no more memory.
        var values: [Int64?] = []
        var taken = 0
        var line = DecimalLine()
        var blocks = 0
        func next() throws(ArchiveError) -> Int64 {
            while taken == values.count {
                guard let block = try nextBlock() else {
                    throw ArchiveError.corrupt("tar stream ends inside a sparse map")
                }
                blocks += 1
                values.removeAll(keepingCapacity: true)
                taken = 0
                for byte in block {
                    if byte == UInt8(ascii: "\n") {
                        values.append(line.finish())
                    } else {
                        line.add(byte)
                    }
                }
            }
            taken += 1
            // Only the lines the map needs are read as numbers, as in Go.
            guard let value = values[taken - 1] else { throw ArchiveError.corrupt("an invalid tar sparse map") }
            return value
        }
        let count = try next()
        guard count >= 0, count < Int64.max / 2 else { throw ArchiveError.corrupt("an invalid tar sparse map") }
        var map = TarSparseMap(size: size)
        for _ in 0..<count {
            let offset = try next()
            map.add(offset: offset, length: try next())
        }
        return (map, blocks)
    }

    /// One decimal line of a sparse map, read a byte at a time as Go's
    /// `strconv.ParseInt` reads the whole line (an optional sign, digits,
    /// leading zeros any number, in `int64`'s range), in constant memory
    /// however long it is.
    struct DecimalLine {
        private var magnitude: UInt64 = 0
        private var negative = false
        private var bytes = 0
        private var digits = 0
        private var invalid = false

        mutating func add(_ byte: UInt8) {
            defer { bytes += 1 }
            if bytes == 0 && (byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) {
                negative = byte == UInt8(ascii: "-")
                return
            }
            let digit = byte &- UInt8(ascii: "0")
            let (times10, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times10.addingReportingOverflow(UInt64(digit))
            guard !invalid, digit <= 9, !overflow, !carry, sum <= UInt64(Int64.max) + 1 else {
                invalid = true
                return
            }
            magnitude = sum
            digits += 1
        }

        /// The line's number, nil when Go would refuse it; the line starts anew.
        mutating func finish() -> Int64? {
            defer { self = DecimalLine() }
            guard !invalid, digits > 0, negative || magnitude <= UInt64(Int64.max) else { return nil }
            return negative ? Int64(truncatingIfNeeded: 0 &- magnitude) : Int64(magnitude)
        }
    }
}
