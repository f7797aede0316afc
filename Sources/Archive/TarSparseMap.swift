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
        var tokens: [[UInt8]] = []
        var read = 0
        var current: [UInt8] = []
        var blocks = 0
        // Lines are taken a block at a time, only as many as the map needs.
        func next() throws(ArchiveError) -> Int64 {
            while read == tokens.count {
                guard let block = try nextBlock() else {
                    throw ArchiveError.corrupt("tar stream ends inside a sparse map")
                }
                blocks += 1
                for byte in block {
                    if byte == UInt8(ascii: "\n") {
                        tokens.append(current)
                        current = []
                    } else {
                        current.append(byte)
                    }
                }
            }
            read += 1
            guard let value = TarReader.goInt64(String(decoding: tokens[read - 1], as: UTF8.self)) else {
                throw ArchiveError.corrupt("an invalid tar sparse map")
            }
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
}
