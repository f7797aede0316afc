import Foundation
import Glibc
import Testing

@testable import Registry

/// Configuration files are read whole, and only when they are regular files
/// of a sane size.
@Suite struct ConfigFileTests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-conf-\(UUID().uuidString)")
        .path

    init() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    @Test func aFileIsReadWhole() throws {
        let bytes = Array(repeating: Array("line\n".utf8), count: 20_000).flatMap { $0 }
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/file"))
        #expect(ConfigFile.read(directory + "/file") == bytes)
        try Data().write(to: URL(fileURLWithPath: directory + "/empty"))
        #expect(ConfigFile.read(directory + "/empty") == [])
    }

    @Test func missingDirectoriesFIFOsAndOversizedFilesReadAsUnreadable() throws {
        #expect(ConfigFile.read(directory + "/missing") == nil)
        #expect(ConfigFile.read(directory) == nil)
        // A FIFO with no writer: never waited on.
        #expect(mkfifo(directory + "/fifo", 0o600) == 0)
        #expect(ConfigFile.read(directory + "/fifo") == nil)
        #expect(FileManager.default.createFile(atPath: directory + "/big", contents: nil))
        #expect(truncate(directory + "/big", off_t(ConfigFile.maxBytes + 1)) == 0)
        #expect(ConfigFile.read(directory + "/big") == nil)
        #expect(truncate(directory + "/big", off_t(ConfigFile.maxBytes)) == 0)
        #expect(ConfigFile.read(directory + "/big")?.count == ConfigFile.maxBytes)
    }
}
