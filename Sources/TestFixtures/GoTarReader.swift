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
        let lines = try GoProgram.run(try built.get(), framing: archives)
        guard lines.count == archives.count else {
            throw TestRegistryError("the Go tar reader answered \(lines.count) of \(archives.count) archives")
        }
        return try lines.map { try JSONDecoder().decode(Listing.self, from: $0) }
    }

    private static let built: Result<URL, any Error> = Result { try GoProgram.build("Tests/GoTarReader") }
}
