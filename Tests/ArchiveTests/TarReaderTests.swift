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
            result.append((entry.name, entry.kind, String(decoding: contents, as: UTF8.self)))
        }
        return result
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
        #expect { try entries(MemoryByteStream(cut)) } throws: { ($0 as? ArchiveError)?.reason == "corrupt_archive" }
    }

    /// An archive written by the system's GNU tar (PAX format, long names,
    /// gzip by the gzip tool) reads the same as it was written.
    @Test func readsWhatGNUTarAndGzipWrite() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-tar-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let deep = String(repeating: "long-directory-name/", count: 6) + "policy.yaml"
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("root/" + deep).deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        try "k: v\n".write(to: dir.appendingPathComponent("root/" + deep), atomically: true, encoding: .utf8)
        let archive = dir.appendingPathComponent("out.tar.gz")
        let tar = try ChildProcess.run(
            "/usr/bin/tar", ["--format=pax", "-czf", archive.path, "-C", dir.appendingPathComponent("root").path, "."])
        #expect(tar.status == 0)
        let found = try entries(Compression.openDecoded(path: archive.path))
        let file = try #require(found.first { $0.0.hasSuffix("policy.yaml") })
        #expect(file.0 == "./" + deep)
        #expect(file.2 == "k: v\n")
    }
}
