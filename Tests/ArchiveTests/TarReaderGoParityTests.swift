import Archive
import Foundation
import Registry
import Testing
import TestFixtures

/// The server's tar reader against Go's `archive/tar`, which the original
/// builtins and the runtimes that unpack layers (containerd,
/// containers/storage) read layers with: on crafted archives, and on
/// thousands of mutations of well-formed ones, both must read the same
/// entries (names, kinds, data) and fail on the same archives. A name read
/// otherwise is a file a policy sees where the runtime unpacks another.
@Suite struct TarReaderGoParity {
    /// What the server's reader reads: entries as Go would list them, and
    /// whether it stopped on an error.
    private static func ours(_ archive: [UInt8]) -> (entries: [Listed], failed: Bool) {
        let tar = TarReader(MemoryByteStream(archive))
        var entries: [Listed] = []
        do {
            while let entry = try tar.next() {
                let data = entry.kind == .sparse ? nil : try tar.readContents(limit: 1 << 20)
                // Names as Go's JSON writes them (the reader holds their bytes, `ArchiveName`).
                entries.append(
                    Listed(
                        name: ArchiveName.readable(entry.name), kind: entry.kind,
                        link: ArchiveName.readable(entry.linkName), data: data.map { Digest.of($0).hex }))
            }
            return (entries, false)
        } catch {
            return (entries, true)
        }
    }

    /// An entry compared: its name, kind, a link's target, and data's
    /// digest (none for a sparse file, whose data Go expands and this
    /// reader does not read).
    struct Listed: Equatable, CustomStringConvertible {
        let name: String
        let kind: TarEntry.Kind
        let link: String
        let data: String?
        var description: String { "\(name) \(kind)\(link.isEmpty ? "" : " -> \(link)")" }
    }

    /// Go's listing in the same terms: its global headers left out (Go
    /// returns them as entries; runtimes and this reader skip them).
    private static func theirs(_ listing: GoReaders.TarListing) -> (entries: [Listed], failed: Bool) {
        let entries = listing.entries.filter { $0.type != "g" }.map { entry -> Listed in
            let kind: TarEntry.Kind
            switch entry.type {
            case "0", "7": kind = .file
            case "5": kind = .directory
            case "2": kind = .symlink
            case "1": kind = .hardlink
            case "S": kind = .sparse
            default: kind = .other
            }
            // Go keeps a target for every kind; only links have one here.
            let link = kind == .symlink || kind == .hardlink ? entry.link : ""
            return Listed(name: entry.name, kind: kind, link: link, data: entry.data)
        }
        return (entries, listing.error != nil)
    }

    /// Compares every archive and records each difference as an issue;
    /// returns how many were compared (an archive with a sparse file Go
    /// would read terabytes of holes from is not). A PAX sparse file (Go
    /// gives no sign of it in its type) is matched by name alone.
    private static func compare(_ archives: [[UInt8]], _ comment: (Int) -> String) async throws -> Int {
        let listings = try await GoReaders.readTar(archives)
        var compared = 0
        for (place, archive) in archives.enumerated() where listings[place].error?.hasPrefix("uncompared") != true {
            compared += 1
            let (ourEntries, weFailed) = ours(archive)
            let (goEntries, goFailed) = theirs(listings[place])
            let same =
                weFailed == goFailed && ourEntries.count == goEntries.count
                && zip(ourEntries, goEntries).allSatisfy { ours, go in
                    ours.kind == .sparse ? ours.name == go.name : ours == go
                }
            if !same {
                Issue.record(
                    "\(comment(place)): ours \(ourEntries)\(weFailed ? " then an error" : ""), Go's \(goEntries)\(goFailed ? " then \(listings[place].error ?? "")" : "")"
                )
            }
        }
        return compared
    }

    /// Archives crafted where readers part: which header names an entry,
    /// which format has a prefix, which types carry data, what ends an
    /// archive, what a PAX record may hold.
    @Test func craftedArchivesReadAsGoReadsThem() async throws {
        let cases = RawTar.craftedCases
        let compared = try await Self.compare(cases.map(\.1)) { cases[$0].0 }
        #expect(compared == cases.count)
    }

    /// Well-formed archives of every kind of entry, mutated in their
    /// headers and extended headers (each mutated header's checksum made
    /// right again, so the mutation reaches the fields): 4,000 archives.
    @Test func mutatedArchivesReadAsGoReadsThem() async throws {
        var generator = SeededGenerator(seed: 2026_1205)
        var archives: [[UInt8]] = []
        for round in 0..<4000 {
            var tar = RawTar.sample(round % 4)
            tar.mutate(using: &generator)
            archives.append(tar.bytes)
        }
        let compared = try await Self.compare(archives) { "mutation \($0)" }
        #expect(compared > 3_900, "\(compared) of \(archives.count) compared")
    }
}

/// A tar made block by block, any field as the test wants it.
struct RawTar {
    /// Each header with the data after it (padded when written).
    var blocks: [(header: [UInt8], data: [UInt8])] = []
    var trailer = [UInt8](repeating: 0, count: 1024)

    var bytes: [UInt8] {
        var out: [UInt8] = []
        for (header, data) in blocks {
            out += header + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
        }
        return out + trailer
    }

    static let ustar = Array("ustar\u{0}00".utf8)
    static let gnu = Array("ustar  \u{0}".utf8)

    /// A header: `name`, `type`, a size field for `size`, the magic, and
    /// any bytes placed at offsets; its checksum right.
    static func header(
        _ name: String, type: UInt8 = UInt8(ascii: "0"), size: Int = 0, magic: [UInt8] = ustar,
        at placed: [(Int, [UInt8])] = []
    ) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], _ offset: Int) { for (i, b) in bytes.enumerated() { h[offset + i] = b } }
        put(Array(name.utf8.prefix(100)), 0)
        put(Array("0000644\u{0}0000000\u{0}0000000\u{0}".utf8), 100)
        put(
            Array((String(repeating: "0", count: 11 - String(size, radix: 8).count) + String(size, radix: 8)).utf8), 124
        )
        put(Array("00000000000\u{0}".utf8), 136)
        h[156] = type
        put(magic, 257)
        for (offset, bytes) in placed { put(bytes, offset) }
        return withChecksum(h)
    }

    static func withChecksum(_ header: [UInt8]) -> [UInt8] {
        var h = header
        for i in 148..<156 { h[i] = UInt8(ascii: " ") }
        let sum = String(h.reduce(0) { $0 + Int($1) }, radix: 8)
        let text = Array((String(repeating: "0", count: max(0, 6 - sum.count)) + sum).utf8) + [0, 0x20]
        for (i, b) in text.prefix(8).enumerated() { h[148 + i] = b }
        return h
    }

    mutating func file(
        _ name: String, _ contents: String = "x", type: UInt8 = UInt8(ascii: "0"),
        magic: [UInt8] = ustar, at placed: [(Int, [UInt8])] = []
    ) {
        let data = Array(contents.utf8)
        blocks.append((Self.header(name, type: type, size: data.count, magic: magic, at: placed), data))
    }

    mutating func entry(_ name: String, type: UInt8, declaredSize: Int, magic: [UInt8] = ustar) {
        blocks.append((Self.header(name, type: type, size: declaredSize, magic: magic), []))
    }

    mutating func pax(_ records: [(String, String)], type: UInt8 = UInt8(ascii: "x")) {
        let body = records.flatMap { TarBuilder.paxRecord($0.0, $0.1) }
        blocks.append((Self.header("PaxHeaders/x", type: type, size: body.count), body))
    }

    mutating func paxBody(_ body: String) {
        blocks.append((Self.header("PaxHeaders/x", type: UInt8(ascii: "x"), size: body.utf8.count), Array(body.utf8)))
    }

    mutating func longName(_ name: String, type: UInt8 = UInt8(ascii: "L")) {
        let body = Array(name.utf8) + [0]
        blocks.append((Self.header("././@LongLink", type: type, size: body.count, magic: Self.gnu), body))
    }

    mutating func link(_ name: String, to target: String, type: UInt8 = UInt8(ascii: "2"), magic: [UInt8] = ustar) {
        blocks.append((Self.header(name, type: type, magic: magic, at: [(157, Array(target.utf8.prefix(100)))]), []))
    }

    /// Archives where readers part, each with what it tries.
    static var craftedCases: [(String, [UInt8])] {
        var cases: [(String, RawTar)] = []
        func add(_ name: String, _ build: (inout RawTar) -> Void) {
            var tar = RawTar()
            build(&tar)
            cases.append((name, tar))
        }
        add("a PAX path, then a GNU long name") {
            $0.pax([("path", "etc/benign.txt")]); $0.longName("etc/policy.yaml"); $0.file("short")
        }
        add("a GNU long name, then a PAX path") {
            $0.longName("etc/policy.yaml"); $0.pax([("path", "etc/benign.txt")]); $0.file("short")
        }
        add("two PAX headers") {
            $0.pax([("path", "etc/a.yaml")]); $0.pax([("mtime", "1")]); $0.file("b.yaml")
        }
        add("a global header between") {
            $0.pax([("path", "etc/a.yaml")]); $0.pax([("comment", "x")], type: UInt8(ascii: "g")); $0.file("b.yaml")
        }
        add("a global header with a path") {
            $0.pax([("path", "etc/g.yaml")], type: UInt8(ascii: "g")); $0.file("b.yaml")
        }
        add("an empty PAX path") {
            $0.pax([("path", "")]); $0.file("keep.yaml")
        }
        add("an empty PAX size") {
            $0.pax([("size", "")]); $0.file("x", "abc")
        }
        add("a PAX size with a plus") {
            $0.pax([("size", "+3")]); $0.file("x", "abc")
        }
        add("a GNU header with times where a prefix would be") {
            $0.file("x.yaml", magic: gnu, at: [(345, Array("00000000001\u{0}00000000001\u{0}".utf8))])
        }
        add("a GNU header with text where its times are") {
            $0.file("x.yaml", magic: gnu, at: [(345, Array("etc".utf8))])
        }
        add("a ustar prefix") { $0.file("x.yaml", at: [(345, Array("etc".utf8))]) }
        add("a V7 header with a prefix") {
            $0.file("x.yaml", magic: [UInt8](repeating: 0, count: 8), at: [(345, Array("etc".utf8))])
        }
        add("a star prefix") { $0.file("x.yaml", at: [(345, Array("etc".utf8)), (508, Array("tar\u{0}".utf8))]) }
        add("a star prefix of 131 bytes and times") {
            $0.file(
                "x.yaml",
                at: [
                    (345, Array(String(repeating: "p", count: 131).utf8)), (476, Array("00000000001\u{0}".utf8)),
                    (508, Array("tar\u{0}".utf8)),
                ])
        }
        add("an old regular file with a slash") { $0.entry("dir/", type: 0, declaredSize: 0) }
        add("a character device with a size") {
            $0.entry("dev/c", type: UInt8(ascii: "3"), declaredSize: 512); $0.file("etc/hidden.yaml")
        }
        add("a FIFO with a size") {
            $0.entry("p", type: UInt8(ascii: "6"), declaredSize: 512); $0.file("etc/hidden.yaml")
        }
        add("a directory with a size") {
            $0.entry("d/", type: UInt8(ascii: "5"), declaredSize: 512); $0.file("etc/hidden.yaml")
        }
        add("a zero block, then an entry") {
            $0.file("a"); $0.blocks.append(([UInt8](repeating: 0, count: 512), [])); $0.file("b")
        }
        add("a PAX sparse file of its own name") {
            $0.pax([
                ("path", "etc/benign"), ("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                ("GNU.sparse.name", "etc/policy.yaml"), ("GNU.sparse.realsize", "3"),
            ])
            $0.file("x", "1\n0\n3\n" + String(repeating: "\u{0}", count: 506) + "abc")
        }
        add("a PAX sparse file of an unknown version") {
            $0.pax([
                ("path", "etc/benign"), ("GNU.sparse.major", "2"), ("GNU.sparse.minor", "0"),
                ("GNU.sparse.name", "etc/policy.yaml"),
            ])
            $0.file("x")
        }
        add("a NUL in a PAX path") {
            $0.pax([("path", "a\u{0}b")]); $0.file("x")
        }
        add("a PAX record of another length") {
            $0.paxBody("30 path=etc/q.yaml\n"); $0.file("x")
        }
        add("a PAX record without a key") {
            $0.paxBody("8 =abc\n"); $0.file("x")
        }
        add("a PAX mtime that is not a time") {
            $0.pax([("mtime", "yesterday")]); $0.file("x")
        }
        add("an owner that is not a number") { $0.file("x", at: [(108, Array("abc\u{0}".utf8))]) }
        add("an old GNU sparse file") {
            $0.file(
                "etc/s.yaml", "abc", type: UInt8(ascii: "S"), magic: gnu, at: [(483, Array("00000000003\u{0}".utf8))])
        }
        add("a PAX linkpath, then a GNU long link name") {
            $0.pax([("linkpath", "etc/benign.txt")]); $0.longName("etc/policy.yaml", type: UInt8(ascii: "K"))
            $0.link("etc/l.yaml", to: "short")
        }
        add("a GNU long link name, then a PAX linkpath") {
            $0.longName("etc/policy.yaml", type: UInt8(ascii: "K")); $0.pax([("linkpath", "etc/benign.txt")])
            $0.link("etc/l.yaml", to: "short", type: UInt8(ascii: "1"))
        }
        add("an empty PAX linkpath") {
            $0.pax([("linkpath", "")]); $0.link("etc/l.yaml", to: "etc/keep.yaml")
        }
        add("a global header between a long link name and its link") {
            $0.longName("etc/policy.yaml", type: UInt8(ascii: "K"))
            $0.pax([("comment", "x")], type: UInt8(ascii: "g")); $0.link("etc/l.yaml", to: "short")
        }
        add("a link target of 100 bytes") {
            $0.link("etc/l.yaml", to: String(repeating: "t", count: 100), type: UInt8(ascii: "1"))
        }
        add("a size field in base 256") {
            $0.file("x", "abc", at: [(124, [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3])])
        }
        return cases.map { ($0.0, $0.1.bytes) }
    }

    /// Well-formed archives of each kind of header, to mutate.
    static func sample(_ kind: Int) -> RawTar {
        var tar = RawTar()
        switch kind {
        case 0:
            tar.entry("etc/", type: UInt8(ascii: "5"), declaredSize: 0)
            tar.file("etc/a.yaml", "a: 1\n")
            tar.link("etc/link.yaml", to: "a.yaml")
            tar.file("etc/b.json", "{}")
            tar.link("etc/hard.yaml", to: "etc/a.yaml", type: UInt8(ascii: "1"))
        case 1:
            tar.pax([("path", "etc/long/" + String(repeating: "p", count: 120) + ".yaml"), ("mtime", "1.5")])
            tar.file("short.yaml", "a: 1\n")
            tar.file("etc/c.yaml", "c: 3\n")
            tar.pax([("linkpath", "../policy/" + String(repeating: "q", count: 120) + ".yaml")])
            tar.link("etc/p.yaml", to: "x")
        case 2:
            tar.longName("etc/gnu/" + String(repeating: "g", count: 120) + ".yaml")
            tar.file("short", "b: 2\n", magic: gnu)
            tar.file("etc/d.yaml", "d", magic: gnu)
            tar.longName("etc/target/" + String(repeating: "k", count: 120) + ".yaml", type: UInt8(ascii: "K"))
            tar.link("etc/g.yaml", to: "x", type: UInt8(ascii: "1"), magic: gnu)
        default:
            tar.file("x.yaml", "e: 5\n", at: [(345, Array("etc/prefix".utf8))])
            tar.pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "etc/s.yaml")])
            tar.file("y", "1\n0\n1\n" + String(repeating: "\u{0}", count: 506) + "z")
            tar.entry("dev/c", type: UInt8(ascii: "3"), declaredSize: 0)
        }
        return tar
    }

    /// One to three changed bytes in one block: a header's fields where
    /// readers part (name, size, type, magic, prefix, times), or an
    /// extended header's text; the header's checksum then made right.
    mutating func mutate(using generator: inout SeededGenerator) {
        let place = Int.random(in: 0..<blocks.count, using: &generator)
        let fields: [Range<Int>] = [
            0..<100, 124..<136, 156..<157, 157..<257, 257..<265, 345..<500, 100..<124, 476..<512,
        ]
        for _ in 0..<Int.random(in: 1...3, using: &generator) {
            let values: [UInt8] = [
                0, 0x20, 0x2F, 0x30, 0x31, 0x37, 0x38, 0x35, 0x78, 0x67, 0x4C, 0x53, 0x80, 0xFF, 0x3D,
            ]
            let value = values.randomElement(using: &generator)!
            if !blocks[place].data.isEmpty && Bool.random(using: &generator) {
                let offset = Int.random(in: 0..<blocks[place].data.count, using: &generator)
                blocks[place].data[offset] = value
            } else {
                let field = fields.randomElement(using: &generator)!
                blocks[place].header[Int.random(in: field, using: &generator)] = value
            }
        }
        blocks[place].header = Self.withChecksum(blocks[place].header)
    }
}
