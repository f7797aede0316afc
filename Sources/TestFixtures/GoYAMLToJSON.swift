import Foundation

/// sigs.k8s.io/yaml's `YAMLToJSON`, run: what the original builtins make
/// of a YAML or JSON file, for tests that compare the server's conversion
/// with it. The program (`Tests/GoYAMLToJSON`) is built once per test
/// process with the system's Go, against Debian's
/// `golang-k8s-sigs-yaml-dev` (`scripts/install-deps`).
public enum GoYAMLToJSON {
    /// What Go made of one document: its JSON text, or its error.
    public struct Conversion: Decodable, Sendable {
        public let json: String
        public let error: String?
    }

    /// Go's conversion of each document, in order.
    public static func convert(_ documents: [[UInt8]]) throws -> [Conversion] {
        let lines = try GoProgram.run(try built.get(), framing: documents)
        guard lines.count == documents.count else {
            throw TestRegistryError("the Go YAML converter answered \(lines.count) of \(documents.count) documents")
        }
        return try lines.map { try JSONDecoder().decode(Conversion.self, from: $0) }
    }

    private static let built: Result<URL, any Error> = Result {
        try GoProgram.build("Tests/GoYAMLToJSON", environment: ["GO111MODULE": "off", "GOPATH": "/usr/share/gocode"])
    }
}

/// A small Go program the tests build and run: framed inputs on stdin,
/// one JSON line out per input.
enum GoProgram {
    /// Builds the program in `directory` (relative to the package) into a
    /// temporary file.
    static func build(_ directory: String, environment: [String: String] = [:]) throws -> URL {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-go-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["go", "build", "-o", output.path, "."]
        process.currentDirectoryURL = FixturePaths.packageRoot.appendingPathComponent(directory)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestRegistryError("go build of \(directory) failed") }
        return output
    }

    /// Runs `binary` on `inputs`, each framed as a 4-byte big-endian length
    /// and its bytes, through files; its output lines.
    static func run(_ binary: URL, framing inputs: [[UInt8]]) throws -> [Data] {
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
        process.executableURL = binary
        process.standardInput = try FileHandle(forReadingFrom: inputFile)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestRegistryError("\(binary.lastPathComponent) failed") }
        return try Data(contentsOf: outputFile).split(separator: UInt8(ascii: "\n")).map { Data($0) }
    }
}
