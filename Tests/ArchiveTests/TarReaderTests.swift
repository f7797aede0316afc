import Reasons
import Archive
import Foundation
import Testing
import TestFixtures

@Suite struct TarReaderTests {
    /// Every entry's name, kind and contents.
    private func entries(_ stream: any ByteStream) throws -> [(String, TarEntry.Kind, String)] {
        let tar = TarReader(stream)
        var result: [(String, TarEntry.Kind, String)] = []
        while let entry = try tar.next() {
            let contents = try tar.readContents(limit: 1 << 20)
            // Names as people read them (the reader holds their bytes, `ArchiveName`).
            result.append((ArchiveName.readable(entry.name), entry.kind, String(decoding: contents, as: UTF8.self)))
        }
        return result
    }

    /// A header's checksum is the sum of its bytes with the checksum field
    /// read as spaces, taken unsigned or, as old tars wrote it, signed:
    /// both are read, and anything else is refused. The name's bytes of
    /// 128 and more make the two sums differ.
    @Test(arguments: ["unsigned", "signed", "neither"])
    func aHeaderChecksumIsTheSumOfItsBytesUnsignedOrSigned(sum: String) throws {
        var builder = TarBuilder()
        builder.file("caf\u{E9}/\u{FF}.yaml", "a: 1")
        var archive = builder.archive
        var unsigned = 0
        var signed = 0
        for index in 0..<512 {
            let byte = (148..<156).contains(index) ? UInt8(ascii: " ") : archive[index]
            unsigned += Int(byte)
            signed += Int(Int8(bitPattern: byte))
        }
        #expect(unsigned != signed)
        let written = sum == "unsigned" ? unsigned : sum == "signed" ? signed : unsigned + 1
        let field = Array(String(written, radix: 8).utf8)
        let octal = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - field.count) + field + [0, UInt8(ascii: " ")]
        archive.replaceSubrange(148..<156, with: octal)
        if sum == "neither" {
            #expect(throws: ArchiveError.self) { try entries(MemoryByteStream(archive)) }
        } else {
            #expect(try entries(MemoryByteStream(archive)).map(\.0) == ["caf\u{E9}/\u{FF}.yaml"])
        }
    }

    /// A PAX 1.0 sparse map is lines of decimal numbers at the start of the
    /// entry's data, which may be as long as the entry says (up to 1 TiB).
    /// A line is read a byte at a time (`TarSparseMap.DecimalLine`, no
    /// line kept) and read as Go reads it however long: 2 MiB of leading
    /// zeros still make a number, 2 MiB of digits past `int64` fail, and
    /// so does a map whose line the stream cuts.
    @Test(arguments: [("zeros", true), ("overflow", false), ("endless", false)])
    func aSparseMapLineOfMegabytesIsReadAsGoReadsIt(line: String, valid: Bool) throws {
        let long = 2 << 20
        var map: [UInt8]
        switch line {
        case "zeros": map = Array("1\n".utf8) + [UInt8](repeating: UInt8(ascii: "0"), count: long) + Array("\n1\n".utf8)
        case "overflow":
            map = Array("1\n".utf8) + [UInt8](repeating: UInt8(ascii: "9"), count: long) + Array("\n1\n".utf8)
        default: map = Array("1\n".utf8) + [UInt8](repeating: UInt8(ascii: "1"), count: long)
        }
        map += [UInt8](repeating: 0, count: (512 - map.count % 512) % 512)
        let data = map + (line == "endless" ? [] : Array("z".utf8))
        var builder = TarBuilder()
        builder.paxHeader(
            TarBuilder.paxRecord("GNU.sparse.major", "1") + TarBuilder.paxRecord("GNU.sparse.minor", "0")
                + TarBuilder.paxRecord("GNU.sparse.name", "s.yaml") + TarBuilder.paxRecord("GNU.sparse.realsize", "1"))
        builder.file("GNUSparseFile.0/s", data)
        let tar = TarReader(MemoryByteStream(builder.archive))
        if valid {
            let entry = try #require(try tar.next())
            #expect(entry.name == "s.yaml" && entry.kind == .sparse && entry.size == 1)
        } else {
            #expect { try tar.next() } throws: { ($0 as? ArchiveError)?.reason == .corruptArchive }
        }
    }

    @Test func readsFilesDirectoriesAndLinksInOrder() throws {
        var builder = TarBuilder()
        builder.directory("etc")
        builder.file("etc/a.yaml", "a: 1\n")
        builder.symlink("etc/b.yaml", to: "a.yaml")
        builder.file("empty", "")
        let found = try entries(MemoryByteStream(builder.archive))
        #expect(found.map(\.0) == ["etc/", "etc/a.yaml", "etc/b.yaml", "empty"])
        #expect(found.map(\.1) == [.directory, .file, .symlink, .file])
        #expect(found[1].2 == "a: 1\n")
    }

    @Test(arguments: [TarBuilder.LongNames.pax, .gnu])
    func longNamesComeFromTheExtendedHeaders(format: TarBuilder.LongNames) throws {
        let long = String(repeating: "d/", count: 70) + "file.json"
        var builder = TarBuilder(longNames: format)
        builder.file(long, "{}")
        builder.file("short", "x")
        let found = try entries(MemoryByteStream(builder.archive))
        #expect(found.map(\.0) == [long, "short"])
        #expect(found.map(\.2) == ["{}", "x"])
    }

    @Test func unreadContentsAreSkipped() throws {
        var builder = TarBuilder()
        builder.file("big", String(repeating: "x", count: 5000))
        builder.file("after", "yes")
        let tar = TarReader(MemoryByteStream(builder.archive))
        #expect(try tar.next()?.name == "big")
        let after = try #require(try tar.next())
        #expect(after.name == "after")
        #expect(try tar.readContents(limit: 10) == Array("yes".utf8))
        #expect(try tar.next() == nil)
    }

    @Test func entriesOverTheLimitAreRefusedAndCanBeSkipped() throws {
        var builder = TarBuilder()
        builder.file("big", String(repeating: "x", count: 2000))
        builder.file("small", "s")
        let tar = TarReader(MemoryByteStream(builder.archive))
        _ = try tar.next()
        #expect(throws: ArchiveError.self) { try tar.readContents(limit: 1000) }
        #expect(try tar.next()?.name == "small")
    }

    @Test func garbageIsACorruptArchive() throws {
        let garbage = [UInt8]((0..<2048).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) })
        #expect { try entries(MemoryByteStream(garbage)) } throws: { ($0 as? ArchiveError)?.kind == .corrupt }
    }

    @Test func anArchiveCutInsideAnEntryIsCorrupt() throws {
        var builder = TarBuilder()
        builder.file("f", String(repeating: "y", count: 3000))
        let cut = Array(builder.bytes.prefix(1500))
        #expect { try entries(MemoryByteStream(cut)) } throws: { ($0 as? ArchiveError)?.reason == .corruptArchive }
    }

    /// An archive written by the system's GNU tar (PAX format, long names,
    /// gzip by the gzip tool) reads the same as it was written.
    @Test func readsWhatGNUTarAndGzipWrite() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-tar-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let deep = String(repeating: "long-directory-name/", count: 6) + "policy.yaml"
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("root/" + deep).deletingLastPathComponent(),
            withIntermediateDirectories: true)
        try "k: v\n".write(to: dir.appendingPathComponent("root/" + deep), atomically: true, encoding: .utf8)
        let archive = dir.appendingPathComponent("out.tar.gz")
        let tar = try ChildProcess.run(
            "/usr/bin/tar", ["--format=pax", "-czf", archive.path, "-C", dir.appendingPathComponent("root").path, "."])
        #expect(tar.status == 0)
        let found = try entries(
            Compression.openDecoded(path: archive.path, budget: ReadBudget(bytes: 1 << 30), as: .runtimes))
        let file = try #require(found.first { $0.0.hasSuffix("policy.yaml") })
        #expect(file.0 == "./" + deep)
        #expect(file.2 == "k: v\n")
    }
}

/// Sizes and lengths in a tar come from whoever made it: each is checked
/// against a bound before any arithmetic, and a lie is an error, not a crash.
@Suite struct HostileTarTests {
    private func readAll(_ archive: [UInt8]) throws {
        let tar = TarReader(MemoryByteStream(archive))
        while try tar.next() != nil {}
    }

    private func reason(_ archive: [UInt8]) -> String? {
        do {
            try readAll(archive)
            return nil
        } catch let error as ArchiveError {
            return error.reason.rawValue
        } catch {
            return "\(error)"
        }
    }

    @Test func aPAXSizeOfIntMaxOnASkippedEntryIsRefused() {
        var builder = TarBuilder()
        builder.paxHeader(TarBuilder.paxRecord("size", "9223372036854775807"))
        builder.file("skipped", "x")
        builder.file("after", "y")
        #expect(reason(builder.archive) == "entry_too_large")
    }

    @Test func aPAXSizeBeyondIntIsCorrupt() {
        var builder = TarBuilder()
        builder.paxHeader(TarBuilder.paxRecord("size", "99999999999999999999999"))
        builder.file("skipped", "x")
        #expect(reason(builder.archive) == "corrupt_archive")
    }

    @Test(arguments: [UInt64(Int64.max), UInt64.max, UInt64(1) << 62, (UInt64(1) << 40) + 1])
    func aHugeBase256SizeIsRefused(size: UInt64) {
        var builder = TarBuilder()
        builder.file("huge", base256Size: size)
        builder.file("after", "y")
        #expect(reason(builder.archive) != nil)
    }

    @Test func aBase256SizeWithinBoundsIsRead() throws {
        var builder = TarBuilder()
        builder.file("small", base256Size: 3, contents: Array("abc".utf8))
        builder.file("after", "y")
        let tar = TarReader(MemoryByteStream(builder.archive))
        #expect(try tar.next()?.size == 3)
        #expect(try tar.readContents(limit: 10) == Array("abc".utf8))
        #expect(try tar.next()?.name == "after")
    }

    @Test(arguments: [
        "9223372036854775807 path=x\n", "9223372036854775800 path=x\n", "18446744073709551615 a=b\n",
        "-5 path=x\n", "0 path=x\n", "3 path=x\n", "11 path=x\n",
    ])
    func aLyingPAXRecordLengthIsCorrupt(record: String) {
        var builder = TarBuilder()
        builder.paxHeader(Array(record.utf8))
        builder.file("f", "x")
        #expect(reason(builder.archive) == "corrupt_archive")
    }

    @Test func extendedHeadersOverOneMiBAreRefused() {
        var builder = TarBuilder()
        builder.paxHeader(
            TarBuilder.paxRecord("comment", String(repeating: "c", count: TarReader.maxExtendedHeaderBytes)))
        builder.file("f", "x")
        #expect(reason(builder.archive) == "entry_too_large")
    }

    @Test func namesOverFourKiBAreRefused() throws {
        var ok = TarBuilder()
        ok.file(String(repeating: "a/", count: 2047) + "b", "x")
        try readAll(ok.archive)
        var long = TarBuilder()
        long.file(String(repeating: "a/", count: 2048) + "b", "x")
        #expect(reason(long.archive) == "name_too_long")
        var gnu = TarBuilder(longNames: .gnu)
        gnu.file(String(repeating: "a/", count: 4096), "x")
        #expect(reason(gnu.archive) == "name_too_long")
        // A link's target, from a PAX linkpath: the same limit.
        for (length, refused) in [(4096, false), (4097, true)] {
            var link = TarBuilder()
            link.paxHeader(TarBuilder.paxRecord("linkpath", String(repeating: "t", count: length)))
            link.symlink("l", to: "x")
            if refused {
                #expect(reason(link.archive) == "name_too_long")
            } else {
                try readAll(link.archive)
            }
        }
    }
}

/// The decoding budget: a bomb stops at it, a cancelled request at once.
@Suite struct ReadBudgetTests {
    @Test func aStreamPastTheBudgetFails() throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let budget = ReadBudget(bytes: 1 << 20)
        let stream = budget.metering(Compression.gzip.decoding(MemoryByteStream(Compressors.gzip(zeros))))
        #expect { _ = try stream.readAll(limit: 1 << 30) } throws: {
            ($0 as? ArchiveError)?.reason == .decompressionLimit
        }
    }

    @Test func theBudgetIsSharedByEveryStreamOfARequest() throws {
        let budget = ReadBudget(bytes: 300)
        _ = try budget.metering(MemoryByteStream([UInt8](repeating: 1, count: 200))).readAll(limit: 1000)
        #expect {
            _ = try budget.metering(MemoryByteStream([UInt8](repeating: 1, count: 200))).readAll(limit: 1000)
        } throws: {
            ($0 as? ArchiveError)?.reason == .decompressionLimit
        }
    }

    @Test func aCancelledBudgetStopsTheNextRead() throws {
        let budget = ReadBudget(bytes: 1 << 30)
        let stream = budget.metering(MemoryByteStream([UInt8](repeating: 1, count: 1 << 20)))
        var buffer = [UInt8](repeating: 0, count: 1024)
        #expect(try buffer.withUnsafeMutableBytes { try stream.read(into: $0) } == 1024)
        budget.cancel()
        #expect { _ = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) } } throws: {
            ($0 as? ArchiveError)?.kind == .cancelled
        }
    }
}
