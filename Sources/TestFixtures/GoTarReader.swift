import Foundation

/// Go's `archive/tar`, run: what it reads from archives, for tests that
/// compare the server's tar reader with the one the original builtins and
/// the runtimes use. The program (`Tests/GoTarReader`) is built with the
/// system's Go once per test process.
public enum GoTarReader {
    /// An entry as Go reads it.
    public struct Entry: Decodable, Equatable, Sendable {
        public let name: String
        /// The type flag, one character (`"0"`, `"5"`, `"\u{0}"` ...).
        public let type: String
        /// The size Go gives (a sparse file's logical size).
        public let size: Int64
        /// The SHA-256 (hex) of what Go reads as the entry's data.
        public let data: String
    }

    /// What Go reads from one archive: its entries until the end or an
    /// error, and that error.
    public struct Listing: Decodable, Sendable {
        public let entries: [Entry]
        public let error: String?
    }

    /// Go's listing of each archive, in order.
    public static func read(_ archives: [[UInt8]]) throws -> [Listing] {
        let binary = try built.get()
        var input = Data()
        for archive in archives {
            var length = UInt32(archive.count).bigEndian
            input.append(Data(bytes: &length, count: 4))
            input.append(contentsOf: archive)
        }
        // Through files: the program's output is read once it is done.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-gotar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputFile = directory.appendingPathComponent("in")
        let outputFile = directory.appendingPathComponent("out")
        try input.write(to: inputFile)
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        process.standardInput = try FileHandle(forReadingFrom: inputFile)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        try process.run()
        process.waitUntilExit()
        let output = try Data(contentsOf: outputFile)
        let lines = output.split(separator: UInt8(ascii: "\n"))
        guard process.terminationStatus == 0, lines.count == archives.count else {
            throw TestRegistryError("the Go tar reader answered \(lines.count) of \(archives.count) archives")
        }
        return try lines.map { try JSONDecoder().decode(Listing.self, from: Data($0)) }
    }

    /// The program, built into a temporary directory on first use.
    private static let built: Result<URL, any Error> = Result {
        let source = FixturePaths.packageRoot.appendingPathComponent("Tests/GoTarReader")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-gotar-\(ProcessInfo.processInfo.processIdentifier)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["go", "build", "-o", output.path, "."]
        process.currentDirectoryURL = source
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestRegistryError("go build of the tar reader failed") }
        return output
    }
}
