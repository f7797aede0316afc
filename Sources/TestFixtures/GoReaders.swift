import Foundation

/// The readers the original builtins and the runtimes use, run: Go's
/// `archive/tar`, sigs.k8s.io/yaml's `YAMLToJSON`, containerd's and
/// containers/storage's layer unpacking, containerd's decompression, the
/// `strings` package's letter case and `encoding/json`, and containerd's
/// choice of an index's entry for a platform, for tests that
/// compare the server's own readers with them. The program
/// (`Tests/GoReaders`) is built once per test process with the system's Go,
/// outside modules, against Debian's `golang-k8s-sigs-yaml-dev`,
/// `golang-github-containerd-containerd-dev` and
/// `golang-github-containers-storage-dev` (`scripts/install-deps --tests`).
public enum GoReaders {
    /// An entry as Go's `archive/tar` reads it.
    public struct TarEntry: Decodable, Equatable, Sendable {
        public let name: String
        /// The type flag, one character (`"0"`, `"5"`, `"\u{0}"` ...).
        public let type: String
        /// The size Go gives (a sparse file's logical size).
        public let size: Int64
        /// The link's target (`Linkname`).
        public let link: String
        /// The SHA-256 (hex) of what Go reads as the entry's data.
        public let data: String
    }

    /// What Go reads from one archive: its entries until the end or an
    /// error, and that error.
    public struct TarListing: Decodable, Sendable {
        public let entries: [TarEntry]
        public let error: String?
    }

    /// What sigs.k8s.io/yaml made of one document: its JSON text, or its error.
    public struct Conversion: Decodable, Sendable {
        public let json: String
        public let error: String?
    }

    /// What containerd makes of one image's layers: the YAML and JSON
    /// files of the asked directories, by the name asked for, as a process
    /// in the container reads them, with each layer unpacked on its own and
    /// stacked as overlayfs stacks them (containerd's default snapshotter),
    /// and with every layer unpacked in one directory (its native one);
    /// each nil with its error when unpacking failed.
    public struct Unpacked: Decodable, Sendable {
        /// Keyed by each name's bytes in hex (`files(_:)` reads them).
        public let overlay: [String: String]?
        public let overlayError: String?
        public let native: [String: String]?
        public let nativeError: String?
        /// Whether both ways unpack the same tree: the same names, kinds,
        /// links' targets and files' contents.
        public let same: Bool
        /// As containers/storage (CRI-O, Podman) unpacks each layer for its
        /// overlay driver, stacked as overlayfs stacks them.
        public let storage: [String: String]?
        public let storageError: String?
        /// As Docker's overlay2 graph driver unpacks each layer, stacked as
        /// overlayfs stacks them.
        public let docker: [String: String]?
        public let dockerError: String?

        /// Files keyed by their names' bytes (`overlay`, `native`, `storage` or
        /// `docker`).
        public static func files(_ hexKeyed: [String: String]) -> [[UInt8]: String] {
            var files: [[UInt8]: String] = [:]
            for (key, value) in hexKeyed {
                let digits = Array(key.utf8)
                let bytes = stride(from: 0, to: digits.count - 1, by: 2).map { index -> UInt8 in
                    UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) ?? 0
                }
                files[bytes] = value
            }
            return files
        }
    }

    /// containerd's unpacking of each image: `directories` asked for, and
    /// `layers`, bottom first.
    public static func unpack(_ images: [(directories: [String], layers: [[UInt8]])]) throws -> [Unpacked] {
        func framed(_ parts: [[UInt8]]) -> [UInt8] {
            var bytes = Self.bigEndian(parts.count)
            for part in parts { bytes += Self.bigEndian(part.count) + part }
            return bytes
        }
        return try run("unpack", images.map { framed($0.directories.map { Array($0.utf8) }) + framed($0.layers) })
    }

    private static func bigEndian(_ value: Int) -> [UInt8] {
        let value = UInt32(value)
        return [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// Go's listing of each archive, in order. The program runs for
    /// seconds (and its first use builds it), waited on from a thread of
    /// its own (`onThreadOfItsOwn`), never from one of the few threads
    /// every test's tasks share: two tests waiting there stop every other
    /// test of the process meanwhile. The readers that are not `async`
    /// are for code already on a thread of its own.
    public static func readTar(_ archives: [[UInt8]]) async throws -> [TarListing] {
        try await onThreadOfItsOwn { Result { try run("tar", archives) } }.get()
    }

    /// sigs.k8s.io/yaml's conversion of each document, in order, waited on
    /// from a thread of its own as `readTar` is.
    public static func convertYAML(_ documents: [[UInt8]]) async throws -> [Conversion] {
        try await onThreadOfItsOwn { Result { try run("yaml", documents) } }.get()
    }

    /// How Go reads a text's runes and their case: the runes (each byte
    /// of an invalid sequence a U+FFFD), its `strings.ToLower` and a key
    /// two texts share exactly when `strings.EqualFold` takes them for
    /// one, all as bytes; and the Unicode version of Go's tables
    /// (`"13.0.0"`).
    public struct LetterCase: Decodable, Sendable {
        private let text: String
        private let lower: String
        private let fold: String
        public let unicode: String

        /// The text's runes, as Go's `encoding/json` writes them.
        public var runes: [UInt8] { Self.bytes(hex: text) }
        /// `strings.ToLower` of the text.
        public var lowered: [UInt8] { Self.bytes(hex: lower) }
        /// Each rune of the text (an invalid byte as U+FFFD) replaced by
        /// the least rune `unicode.SimpleFold` takes for it.
        public var folded: [UInt8] { Self.bytes(hex: fold) }

        private static func bytes(hex: String) -> [UInt8] {
            let digits = Array(hex.utf8)
            return stride(from: 0, to: digits.count - 1, by: 2).map { index in
                UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) ?? 0
            }
        }
    }

    /// encoding/json's reading of each text (`json.Unmarshal` into an
    /// `interface{}`, written again by `json.Marshal`), in order.
    public static func readJSON(_ texts: [[UInt8]]) async throws -> [Conversion] {
        try await onThreadOfItsOwn { Result { try run("json", texts) } }.get()
    }

    /// What containerd's `DecompressStream` read of one stream (its
    /// compression told by its first bytes): the size and SHA-256 (hex) of
    /// what it read, up to 64 MiB, and the error that ended it; and what
    /// each runtime takes its compression for.
    public struct Decompressed: Decodable, Sendable, CustomStringConvertible {
        public let size: Int
        public let data: String
        public let error: String?
        /// The compression containerd took the stream for (`none`, `gzip`,
        /// `zstd`), and the one containers/storage (CRI-O, Podman) takes it
        /// for by its table of magic numbers (also `xz`, `bzip2`).
        public let containerd: String
        public let storage: String

        public var description: String { "\(size) bytes \(data.prefix(12)) \(error ?? "")" }
    }

    /// containerd's decompression of each stream, in order, waited on
    /// from a thread of its own as `readTar` is.
    public static func decompress(_ streams: [[UInt8]]) async throws -> [Decompressed] {
        try await onThreadOfItsOwn { Result { try run("decompress", streams) } }.get()
    }

    /// Which entry of an index containerd runs for a platform: its place
    /// (0 first), or -1 with containerd's error when it runs none.
    public struct ResolvedPlatform: Decodable, Sendable {
        public let chosen: Int
        public let error: String?
    }

    /// containerd's `images.Manifest` under `platforms.Only(platform)` for
    /// each index, given as its entries' `platform` texts (`nil` for an
    /// entry without one), in order; each entry an image manifest whose
    /// config says `linux/amd64`. Waited on from a thread of its own, as
    /// `readTar` is.
    public static func resolvePlatform(_ indexes: [(platform: String, entries: [String?])]) async throws
        -> [ResolvedPlatform]
    {
        let inputs = indexes.map { index in
            let entries = index.entries.map { $0 ?? "null" }.joined(separator: ",")
            return Array(#"{"platform":"\#(index.platform)","entries":[\#(entries)]}"#.utf8)
        }
        return try await onThreadOfItsOwn { Result { try run("platform", inputs) } }.get()
    }

    /// Go's reading of each text's runes and case, in order.
    public static func letterCase(_ texts: [[UInt8]]) throws -> [LetterCase] { try run("case", texts) }

    /// Runs the program's `reader` on `inputs`, each framed as a 4-byte
    /// big-endian length and its bytes, through files; one answer each.
    private static func run<Answer: Decodable>(_ reader: String, _ inputs: [[UInt8]]) throws -> [Answer] {
        var input = Data()
        for bytes in inputs {
            var length = UInt32(bytes.count).bigEndian
            input.append(Data(bytes: &length, count: 4))
            input.append(contentsOf: bytes)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-go-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputFile = directory.appendingPathComponent("in")
        let outputFile = directory.appendingPathComponent("out")
        try input.write(to: inputFile)
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let process = Process()
        process.executableURL = try built.get()
        process.arguments = [reader]
        process.standardInput = try FileHandle(forReadingFrom: inputFile)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        if let memory = memoryBackedTemporary {
            process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": memory]) { $1 }
        }
        try process.run()
        process.waitUntilExit()
        let lines = try Data(contentsOf: outputFile).split(separator: UInt8(ascii: "\n"))
        guard process.terminationStatus == 0, lines.count == inputs.count else {
            throw TestRegistryError("the Go \(reader) reader answered \(lines.count) of \(inputs.count) inputs")
        }
        return try lines.map { try JSONDecoder().decode(Answer.self, from: Data($0)) }
    }

    /// Where the program unpacks layers, when there is a tmpfs for it:
    /// `/dev/shm`. Unpacking the parity tests' 1,500 images on this
    /// machine's ext4 took 100 s, 80 of them in the kernel; in a tmpfs,
    /// 46 s. The images are small and each is removed once read.
    private static let memoryBackedTemporary: String? = {
        var info = stat()
        guard stat("/dev/shm", &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_mode & S_ISVTX != 0,
            access("/dev/shm", W_OK) == 0
        else { return nil }
        return "/dev/shm"
    }()

    /// The program, built into a temporary file on first use.
    private static let built: Result<URL, any Error> = Result {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-go-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["go", "build", "-o", output.path, "."]
        process.currentDirectoryURL = FixturePaths.packageRoot.appendingPathComponent("Tests/GoReaders")
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["GO111MODULE": "off", "GOPATH": "/usr/share/gocode"]) { $1 }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestRegistryError("go build of Tests/GoReaders failed") }
        return output
    }
}
