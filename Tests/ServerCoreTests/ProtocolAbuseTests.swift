import Foundation
import JSON
import Testing
import TestFixtures

/// Clients that misbehave: huge or deeply nested messages, and a flood of
/// requests whose responses are not read.
@Suite(.serialized) struct ProtocolAbuseTests {
    @Test func aHundredMegabyteLineIsRefusedAndTheSessionGoesOn() async throws {
        let p = try ServerProcess()
        var line = Data(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"pad":""#.utf8)
        line.append(Data(repeating: UInt8(ascii: "x"), count: 100 << 20))
        line.append(Data("\"}}\n".utf8))
        p.send(bytes: line)
        p.sendLine(#"{"jsonrpc":"2.0","id":2,"method":"server.stats"}"#)
        p.closeInput()
        #expect(await p.waitForExit(seconds: 60) == 0)
        let messages = p.messages
        #expect(messages.count == 2)
        #expect(messages.first?["error"]?["data"]?["reason"] == "message_too_large")
        #expect(messages.last?["id"] == 2)
    }

    @Test func deeplyNestedJSONIsAParseErrorNotACrash() async throws {
        let p = try ServerProcess()
        p.sendLine(String(repeating: "[", count: 1_000_000))
        p.sendLine(
            #"{"jsonrpc":"2.0","id":"x","method":"ec.oci.blob_files","params":["a@sha256:"#
                + String(repeating: "0", count: 64)
                + #"", "# + String(repeating: "[", count: 100_000) + "]}")
        p.sendLine(#"{"jsonrpc":"2.0","id":2,"method":"initialize"}"#)
        p.closeInput()
        #expect(await p.waitForExit(seconds: 60) == 0)
        let messages = p.messages
        #expect(messages.count == 3)
        #expect(messages[0]["error"]?["code"] == -32700)
        #expect(messages[1]["error"]?["code"] == -32700)
        #expect(messages[2]["id"] == 2)
    }

    /// 100k requests written while nothing is read: the server stops reading
    /// when its output backs up, keeps its memory bounded, and answers every
    /// request once reading resumes.
    @Test func aFloodOfUnreadRequestsIsAnsweredWithBoundedMemory() async throws {
        ignoreBrokenPipes()
        let process = Process()
        process.executableURL = ServerProcess.binary
        process.arguments = ["--log-level", "error"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let count = 100_000
        let writer = Thread {
            var batch = Data()
            for i in 0..<count {
                batch.append(Data(#"{"jsonrpc":"2.0","id":\#(i),"method":"initialize"}"#.utf8))
                batch.append(10)
                if batch.count > 1 << 16 {
                    try? input.fileHandleForWriting.write(contentsOf: batch)
                    batch.removeAll(keepingCapacity: true)
                }
            }
            try? input.fileHandleForWriting.write(contentsOf: batch)
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        // Nothing is read for two seconds.
        try await Task.sleep(for: .seconds(2))
        let rssWhileBlocked = ProcessUsage.rssKiB(process.processIdentifier)
        // Sanitizer builds carry shadow memory: their runs raise the bound.
        let limitMiB = ProcessInfo.processInfo.environment["OCIRPC_TEST_RSS_LIMIT_MIB"].flatMap { Int($0) } ?? 200
        #expect(
            rssWhileBlocked > 0 && rssWhileBlocked < limitMiB * 1024,
            "RSS \(rssWhileBlocked) KiB while output is blocked")
        let lines = try await Task.detached {
            var newlines = 0
            while let chunk = try output.fileHandleForReading.read(upToCount: 1 << 20), !chunk.isEmpty {
                newlines += chunk.reduce(0) { $0 + ($1 == 10 ? 1 : 0) }
            }
            return newlines
        }.value
        // Polled: a blocking wait would hold one of the task pool's few threads.
        for _ in 0..<2000 where process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
        #expect(lines == count)
        #expect(process.terminationStatus == 0)
    }
}

/// 100,000 calls against a registry that never answers: waiting calls are
/// parked cheaply, memory stays bounded, and control messages are read and
/// acted on at once, whether the calls come one per line or in one batch.
@Suite(.serialized) struct StalledRegistryFloodTests {
    static let count = 100_000

    @Test(arguments: [false, true])
    func aFloodOfStalledCallsKeepsMemoryBoundedAndControlMessagesAnswered(asOneBatch: Bool) async throws {
        let registry = try SilentListener()
        // The calls stall until their timeout, far beyond anything below:
        // a call still in flight when an answer comes proves the answer did
        // not wait for the calls (no clock is read; the machine may be slow).
        let session = try RPCSession(["--log-level", "error", "--timeout", "600s"])
        let calls = (0..<Self.count).map { i -> JSONValue in
            [
                "jsonrpc": "2.0", "id": .string("c\(i)"), "method": "ec.oci.image_manifest",
                "params": [.string("\(registry.host)/app:t\(i)")],
            ]
        }
        if asOneBatch {
            session.process.sendLine(JSONValue.array(calls).jsonText)
        } else {
            var text = ""
            for call in calls { text += call.jsonText + "\n" }
            session.process.send(text)
        }
        // A first stats call is read after every call before it (stdin is
        // in order): once it is answered, all the calls are in.
        _ = try await session.call("server.stats", [])
        let started = ContinuousClock.now
        let stats = try await session.call("server.stats", [])
        let statsLatency = ContinuousClock.now - started
        // Answered while the calls stall, not after: they are all in flight.
        // How fast is the bench's business.
        #expect(stats["result"]?["inFlight"]?.intValue ?? 0 >= Self.count - 10, "\(stats.jsonText.prefix(400))")
        print("stalled flood (batch: \(asOneBatch)): server.stats answered in \(statsLatency)")

        let rss = ProcessUsage.rssKiB(session.process.process.processIdentifier)
        let limitMiB = ProcessInfo.processInfo.environment["OCIRPC_TEST_RSS_LIMIT_MIB"].flatMap { Int($0) } ?? 200
        #expect(rss > 0 && rss < limitMiB * 1024, "RSS \(rss) KiB with \(Self.count) stalled calls")
        print("stalled flood (batch: \(asOneBatch)): RSS \(rss / 1024) MiB")

        // A waiting call is cancelled and answered while the others stall
        // (in a batch, its answer waits for the batch's array; the cancel's
        // own answer does not): -32800, not the timeout's error.
        let cancel = try await session.call("$/cancelRequest", ["id": "c99999"])
        #expect(cancel["result"] == .null)
        if !asOneBatch {
            let cancelled = try await session.response(-1, id: "c99999", seconds: 120)
            #expect(cancelled["error"]?["code"] == -32800)
            let after = try await session.call("server.stats", [])
            #expect(after["result"]?["inFlight"]?.intValue ?? 0 >= Self.count - 11, "\(after.jsonText.prefix(400))")
        }
        // `exit` takes effect although every call stalls for ever: the
        // process ends (how fast is the bench's business; under the whole
        // suite on two cores it took 10.07 s once, 1-3 s alone).
        session.process.sendLine(#"{"jsonrpc":"2.0","method":"exit"}"#)
        #expect(await session.process.waitForExit(seconds: 120) != nil)
        _ = registry
    }
}
