import Foundation
import JSON
import Testing
import TestFixtures

/// `ocirpc call METHOD [ARG...]` through the binary.
@Suite(.serialized, .needsDockerRegistry) struct OneShotCallTests {
    @Test func aResultGoesToStdoutAsJSON() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await registry.pushMinimalImage("cli", "v1", annotations: #"{"from":"cli"}"#)
        let run = try await ServerProcess.run(["call", "ec.oci.image_manifest", "\(registry.host)/cli:v1"])
        #expect(run.status == 0, "\(run.stderr)")
        let result = try JSONParser.parse(Array(run.stdout.utf8))
        #expect(result["annotations"]?["from"] == "cli")
        #expect(result["schemaVersion"] == 2)
    }

    @Test func aBatchTakesAJSONArrayArgument() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await registry.pushMinimalImage("cli", "a", annotations: #"{"n":"a"}"#)
        try await registry.pushMinimalImage("cli", "b", annotations: #"{"n":"b"}"#)
        let refs = #"["\#(registry.host)/cli:a", "\#(registry.host)/cli:b"]"#
        let run = try await ServerProcess.run(["--max-concurrency", "2", "call", "ec.oci.image_manifests", refs])
        #expect(run.status == 0, "\(run.stderr)")
        let result = try JSONParser.parse(Array(run.stdout.utf8))
        #expect(result["\(registry.host)/cli:a"]?["annotations"]?["n"] == "a", "\(run.stderr)")
        #expect(result["\(registry.host)/cli:b"]?["annotations"]?["n"] == "b", "\(run.stderr)")
    }

    @Test func aBatchWithProgressCountsOnStderrAndAnswersTheSame() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await registry.pushMinimalImage("cli", "a", annotations: #"{"n":"a"}"#)
        try await registry.pushMinimalImage("cli", "b", annotations: #"{"n":"b"}"#)
        let refs = #"["\#(registry.host)/cli:a", "\#(registry.host)/cli:b", "\#(registry.host)/cli:nope"]"#
        let plain = try await ServerProcess.run(["call", "ec.oci.image_manifests", refs])
        let counted = try await ServerProcess.run(["call", "--progress", "ec.oci.image_manifests", refs])
        #expect(counted.status == 0, "\(counted.stderr)")
        #expect(try JSONParser.parse(Array(counted.stdout.utf8)) == JSONParser.parse(Array(plain.stdout.utf8)))
        #expect(try JSONParser.parse(Array(counted.stdout.utf8)).objectValue?.count == 2)
        #expect(counted.stderr.contains("3/3"), "\(counted.stderr)")
        #expect(!plain.stderr.contains("/3"))
    }

    /// A blob's value may be 512 levels deep, and the response around it
    /// deeper: `call` read it at 512 levels, passed it over, and waited for
    /// ever for an answer.
    @Test func anAnswerAsDeepAsTheServerWritesIsPrinted() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let depth = JSONParser.defaultMaxDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let digest = try await registry.pushBlob("cli", Data(text.utf8))
        let call = try ServerProcess(["call", "ec.oci.parsed_blob", "\(registry.host)/cli@\(digest)"])
        call.closeInput()
        let status = await call.waitForExit(seconds: 30)
        #expect(status == 0, "\(call.stderr)")
        #expect(String(decoding: call.stdout, as: UTF8.self) == text + "\n")
    }

    @Test func anErrorIsOneLineOnStderrAndExitsOne() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let run = try await ServerProcess.run(["call", "ec.oci.descriptor", "\(registry.host)/cli:missing"])
        #expect(run.status == 1)
        #expect(run.stdout.isEmpty)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(run.stderr)")
        #expect(run.stderr.contains("-32001 manifest_unknown"), "\(run.stderr)")
        let bad = try await ServerProcess.run(["call", "ec.oci.image_manifest", "Not A Ref"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("-32602 invalid_reference"), "\(bad.stderr)")
        let usage = try await ServerProcess.run(["call"])
        #expect(usage.status == 2)
    }

    /// A registry's words in the error line cannot end it, start a forged
    /// one, or send the terminal its escapes (a title, the clipboard).
    @Test func aRegistrysLineBreaksAndTerminalEscapesAreWrittenAsEscapes() async throws {
        let registry = try HostileRegistry()
        defer { registry.stop() }
        let said =
            #"\u001b]52;c;ZXZpbA==\u0007\u001b[2Kgone\r\nocirpc: ec.oci.descriptor failed: forged\u009b31m"#
        registry.script { _ in
            .response(
                status: 404, headers: [("Content-Type", "application/json")],
                body: Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"\#(said)"}]}"#.utf8))
        }
        let run = try await ServerProcess.run(["call", "ec.oci.image_manifest", "\(registry.host)/app:v1"])
        #expect(run.status == 1)
        // Bytes, not characters: Swift takes CR LF for one character.
        #expect(run.stderr.utf8.split(separator: 0x0A).count == 1, "\(run.stderr)")
        #expect(!run.stderr.utf8.contains { $0 < 0x20 && $0 != 0x0A }, "\(run.stderr)")
        #expect(!run.stderr.unicodeScalars.contains { (0x7F...0x9F).contains($0.value) })
        #expect(run.stderr.contains(#"\u001b]52;c;ZXZpbA==\u0007\u001b[2Kgone\u000d\u000aocirpc"#), "\(run.stderr)")
        #expect(run.stderr.contains("manifest_unknown"), "\(run.stderr)")
    }
}
