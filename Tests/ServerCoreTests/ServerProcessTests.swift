import TestFixtures
import Foundation
import JSON
import Testing

/// The binary as clients see it: stdio, exit status, signals.
@Suite struct ServerBinary {
    @Test func helpListsEveryOptionAndExitsZero() async throws {
        let r = try await ServerProcess.run(["--help"])
        #expect(r.status == 0)
        for flag in [
            "--max-concurrency", "--cache-bytes", "--tag-ttl", "--platform", "--insecure-registry",
            "--timeout", "--retries", "--log-level", "--log-format", "--max-message-bytes", "--version",
        ] {
            #expect(r.stdout.contains(flag), "\(flag)")
        }
    }

    @Test func debugLogsOneLinePerRequestWithItsOutcome() async throws {
        let input =
            [
                #"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"ec.oci.image_manifest","params":["Bad Ref"]}"#,
            ].joined(separator: "\n") + "\n"
        let debug = try await ServerProcess.run(["--log-level", "debug", "--log-format", "json"], input: input)
        let lines = debug.stderr.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8)) }
        let requests = lines.filter { $0["msg"] == "request" || $0["message"] == "request" }
        #expect(requests.count == 2, "\(debug.stderr)")
        #expect(
            requests.contains {
                $0["id"] == "1" && $0["method"] == "initialize" && $0["outcome"] == "ok" && $0["ms"] != nil
            })
        #expect(
            requests.contains {
                $0["id"] == "2" && $0["method"] == "ec.oci.image_manifest" && $0["subject"] == "Bad Ref"
                    && $0["outcome"] == "invalid_reference"
            })
        // At the default level there is none.
        let quiet = try await ServerProcess.run([], input: input)
        #expect(!quiet.stderr.contains("request"), "\(quiet.stderr)")
    }

    @Test func versionPrintsOneLine() async throws {
        let r = try await ServerProcess.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("ocirpc 0."))
        #expect(r.stdout.split(separator: "\n").count == 1)
    }

    @Test func badSettingExitsTwoWithOneLineOnStderr() async throws {
        let r = try await ServerProcess.run(["--cache-bytes", "huge"])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("--cache-bytes"))
        let env = try await ServerProcess.run([], environment: ["OCIRPC_LOG_FORMAT": "yaml"])
        #expect(env.status == 2)
        #expect(env.stderr.contains("OCIRPC_LOG_FORMAT"))
    }

    @Test func endOfInputAnswersEverythingThenExitsZero() async throws {
        let n = 500
        let input = (0..<n).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"initialize"}"# }.joined(separator: "\n")
        let r = try await ServerProcess.run([], input: input)  // last line has no newline
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == n)
        let ids = Set(lines.compactMap { (try? JSONParser.parse(String($0)))?["id"]?.intValue })
        #expect(ids == Set(0..<n))
    }

    @Test func initializeDescribesTheServer() async throws {
        let r = try await ServerProcess.run(
            [], input: #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":1,"rootUri":null}}"# + "\n"
        )
        let result = try JSONParser.parse(r.stdout.trimmingCharacters(in: .newlines))["result"]
        #expect(result?["protocolVersion"] == "1")
        #expect(result?["serverInfo"]?["name"] == "ocirpc")
        #expect(result?["capabilities"]?["framing"] == ["ndjson", "content-length"])
        #expect(result?["capabilities"]?["partialResults"] == true)
        #expect(result?["capabilities"]?["cancellation"] == true)
        #expect(result?["capabilities"]?["methods"]?.arrayValue?.contains("rpc.discover") == true)
    }

    @Test func rpcDiscoverWorksFromACopiedBinary() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-copy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("ocirpc")
        try Executables.write(Data(contentsOf: ServerProcess.binary), to: copy.path)
        let viaCopy = try await runBinary(copy, input: #"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"# + "\n")
        let document = try JSONParser.parse(viaCopy.trimmingCharacters(in: .newlines))["result"]
        let onDisk = try JSONParser.parse(
            Array(Data(contentsOf: OpenRPCContract.packageRoot.appendingPathComponent("protocol/openrpc.json"))))
        #expect(document == onDisk)
    }

    private func runBinary(_ url: URL, input: String) async throws -> String {
        let process = Process()
        process.executableURL = url
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let reader = stdout.fileHandleForReading
        let data = await onThreadOfItsOwn { reader.readDataToEndOfFile() }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(2)) }
        return String(decoding: data, as: UTF8.self)
    }

    @Test func contentLengthSessionIsAnsweredInContentLengthFraming() async throws {
        let body = #"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#
        let r = try await ServerProcess.run([], input: "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
        #expect(r.status == 0)
        let expected = #"{"jsonrpc":"2.0","id":1,"result":null}"#
        #expect(r.stdout == "Content-Length: \(expected.utf8.count)\r\n\r\n\(expected)")
    }

    @Test func oversizedMessageIsAnsweredAndTheSessionGoesOn() async throws {
        let big =
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"pad":""# + String(repeating: "x", count: 5000)
            + #""}}"#
        let r = try await ServerProcess.run(
            ["--max-message-bytes", "1KiB"],
            input: big + "\n" + #"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"# + "\n")
        let messages = r.stdout.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        #expect(messages.count == 2)
        #expect(messages.first?["error"]?["code"] == -32600)
        #expect(messages.first?["error"]?["data"]?["reason"] == "message_too_large")
        #expect(messages.first?["id"] == .null)
        #expect(messages.last?["id"] == 2)
    }

    @Test func invalidUTF8IsAParseErrorAndTheSessionGoesOn() async throws {
        let p = try ServerProcess()
        var bad = Data(#"{"jsonrpc":"2.0","id":1,"method":"x"#.utf8)
        bad.append(contentsOf: [0xC3, 0x28])
        bad.append(contentsOf: Array("\"}\n".utf8))
        p.send(bytes: bad)
        p.sendLine(#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#)
        p.closeInput()
        #expect(await p.waitForExit() == 0)
        let messages = p.messages
        #expect(messages.count == 2)
        #expect(messages.first?["error"]?["code"] == -32700)
        #expect(messages.last?["id"] == 2)
    }

    @Test func exitWithoutShutdownIsStatusOne() async throws {
        let r = try await ServerProcess.run([], input: #"{"jsonrpc":"2.0","method":"exit"}"# + "\n")
        #expect(r.status == 1)
    }

    @Test func shutdownThenExitIsStatusZeroAndLaterRequestsAreRefused() async throws {
        let p = try ServerProcess()
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#)
        p.sendLine(#"{"jsonrpc":"2.0","id":2,"method":"initialize"}"#)
        let messages = await p.waitForMessages(2)
        p.sendLine(#"{"jsonrpc":"2.0","method":"exit"}"#)
        #expect(await p.waitForExit() == 0)
        let byID = Dictionary(uniqueKeysWithValues: messages.map { ($0["id"]?.intValue ?? -1, $0) })
        #expect(byID[1]?["result"] == .null)
        #expect(byID[2]?["error"]?["data"]?["reason"] == "shutting_down")
    }

    @Test func sigtermStopsAnIdleServerCleanly() async throws {
        let p = try ServerProcess()
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#)
        #expect(await p.waitForMessages(1).count == 1)
        p.process.terminate()  // SIGTERM
        #expect(await p.waitForExit(seconds: 60) == 0)
    }

    /// SIGTERM drains for a grace period (10 s); a second signal cancels
    /// what is in flight at once, and each such call is answered -32800.
    /// The second used to be ignored until the grace period ended.
    @Test func aSecondSignalCancelsTheDrainAtOnce() async throws {
        // A registry that holds every request open for a minute.
        let registry = try TestHTTPServer { _ in
            .paused(status: 200, headers: [], body: Array(repeating: 0x20, count: 10), after: 0, seconds: 60)
        }
        defer { registry.stop() }
        let p = try ServerProcess(["--retries", "0"])
        p.sendLine(
            #"{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifest","params":["\#(registry.address):\#(registry.port)/x:1"]}"#
        )
        for _ in 0..<200 where registry.connectionsAccepted == 0 { try await Task.sleep(for: .milliseconds(50)) }
        try #require(registry.connectionsAccepted == 1)
        let started = ContinuousClock.now
        p.process.terminate()
        for _ in 0..<200 where !p.stderr.contains("signal received") { try await Task.sleep(for: .milliseconds(20)) }
        p.process.terminate()
        #expect(await p.waitForExit(seconds: 30) == 0, "\(p.stderr)")
        #expect(ContinuousClock.now - started < .seconds(8), "\(p.stderr)")
        #expect(p.stderr.contains("second signal"), "\(p.stderr)")
        #expect(p.messages.count == 1)
        #expect(p.messages.first?["error"]?["code"] == -32800, "\(p.messages)")
    }

    @Test func closedStdoutMakesTheServerExitCleanly() async throws {
        let p = try ServerProcess(closeOutput: true)
        for i in 0..<2000 { p.sendLine(#"{"jsonrpc":"2.0","id":\#(i),"method":"rpc.discover"}"#) }
        let status = await p.waitForExit(seconds: 10)
        #expect(status == 0)
        #expect(!p.stderr.contains("Fatal error"))
    }

    /// The stream of messages is the server's alone: what anything else in
    /// the process writes to descriptor 1 (here written to it from outside,
    /// through `/proc`) goes to stderr.
    @Test func whatElseWritesToStdoutGoesToStderr() async throws {
        let p = try ServerProcess()
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#)
        #expect(await p.waitForMessages(1).count == 1)
        let stray = try #require(FileHandle(forWritingAtPath: "/proc/\(p.process.processIdentifier)/fd/1"))
        stray.write(Data("a stray line\n".utf8))
        try stray.close()
        p.sendLine(#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#)
        #expect(await p.waitForMessages(2).count == 2)
        p.sendLine(#"{"jsonrpc":"2.0","method":"exit"}"#)
        #expect(await p.waitForExit() == 0)
        let lines = String(decoding: p.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        for line in lines { #expect(throws: Never.self) { try JSONParser.parse(String(line)) } }
        #expect(p.stderr.contains("a stray line"))
    }

    /// A parent may pass stdin and stdout non-blocking (`O_NONBLOCK` is
    /// the open file's, shared with whoever set it). A read that would
    /// block was taken for the end of input: the server stopped before its
    /// first request. Now it waits, and answers every request, whole.
    @Test func aNonBlockingStdinAndStdoutAreWaitedOnNotTakenForTheirEnd() async throws {
        let p = try ServerProcess(launcher: [
            "/usr/bin/python3", "-c",
            "import os, sys; os.set_blocking(0, False); os.set_blocking(1, False); os.execv(sys.argv[1], sys.argv[1:])",
        ])
        try await Task.sleep(for: .milliseconds(300))
        p.sendLine(#"{"jsonrpc":"2.0","id":0,"method":"server.stats"}"#)
        #expect(await p.waitForMessages(1, seconds: 20).count == 1, "\(p.stderr)")
        // Answers of 30 KB each, more than the pipe holds at once.
        for id in 1...40 { p.sendLine(#"{"jsonrpc":"2.0","id":\#(id),"method":"rpc.discover"}"#) }
        p.closeInput()
        #expect(await p.waitForExit(seconds: 60) == 0, "\(p.stderr)")
        let ids = Set(p.messages.compactMap { $0["id"]?.intValue })
        #expect(ids == Set(0...40), "\(p.stderr)")
        #expect(p.messages.dropFirst().allSatisfy { $0["result"]?["openrpc"] != nil })
    }

    /// The thread pool needs `/proc` (libdispatch stops the process when it
    /// cannot watch its threads there): without it the server says so at
    /// start rather than dying later.
    @Test func withoutProcTheServerSaysWhyAtStart() async throws {
        let p = try ServerProcess(
            launcher: [
                "/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/sh", "-c",
                #"mount -t tmpfs none /proc && exec "$@""#, "sh",
            ])
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#)
        p.closeInput()
        #expect(await p.waitForExit() == 2)
        #expect(p.stdout.isEmpty)
        // One line of its own (a sanitizer's runtime, when built with one,
        // adds its own, `==pid==...`, about /proc too).
        let lines = p.stderr.split(separator: "\n").filter { !$0.hasPrefix("==") }
        #expect(lines.count == 1, "\(p.stderr)")
        #expect(lines.first?.hasPrefix("ocirpc: cannot open /proc/") == true, "\(p.stderr)")
    }

    /// In a container limited to 256 MiB (a memory cgroup made here), the
    /// budget's default is half of it and the content cache's an eighth:
    /// with 2 GiB, a flood of large answers would be killed by the kernel
    /// before the budget refused it.
    @Test func theMemoryDefaultsStayUnderAContainersLimit() async throws {
        let name = "ocirpc-test-\(UUID().uuidString)"
        let v1 = "/sys/fs/cgroup/memory"
        let group: String
        let limitFile: String
        if FileManager.default.fileExists(atPath: v1 + "/memory.limit_in_bytes") {
            (group, limitFile) = (v1 + "/" + name, "memory.limit_in_bytes")
        } else {
            (group, limitFile) = ("/sys/fs/cgroup/" + name, "memory.max")
        }
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { rmdir(group) }
        try Data("268435456".utf8).write(to: URL(fileURLWithPath: group + "/" + limitFile))
        // Downloads on disk keep their default; in a tmpfs they are the
        // container's memory, and take a quarter of its limit.
        let onDisk = FileManager.default.currentDirectoryPath
        for (temporary, downloads) in [(onDisk, 4 << 30), ("/dev/shm", 64 << 20)] {
            let p = try ServerProcess(
                environment: ["TMPDIR": temporary],
                launcher: ["/bin/sh", "-c", #"echo $$ > "$0/cgroup.procs" && exec "$@""#, group])
            p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"server.stats"}"#)
            p.closeInput()
            #expect(await p.waitForExit() == 0)
            let stats = try #require(p.messages.first?["result"], "\(p.stderr)")
            #expect(stats["memoryHeld"]?["budget"] == .integer(128 << 20), "\(stats)")
            #expect(stats["cacheBytes"]?["budget"] == .integer(32 << 20), "\(stats)")
            #expect(stats["downloadsHeld"]?["budget"] == .integer(downloads), "\(temporary): \(stats)")
        }
    }

    @Test func logsGoToStderrOnly() async throws {
        let r = try await ServerProcess.run(
            ["--log-level", "debug", "--log-format", "json"],
            input: #"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"# + "\n")
        #expect(r.stdout == #"{"jsonrpc":"2.0","id":1,"result":null}"# + "\n")
        let logLines = r.stderr.split(separator: "\n")
        #expect(!logLines.isEmpty)
        for line in logLines {
            let entry = try JSONParser.parse(String(line))
            #expect(entry["level"] != nil && entry["msg"] != nil && entry["time"] != nil)
        }
    }
}
