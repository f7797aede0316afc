import Foundation
import JSON
import Logging
import RPCDispatch
import Testing
import TestFixtures
@testable import ServerCore

/// A server run in this process over pipes, with a slow method plugged in,
/// to check that the lifecycle waits for work in flight.
private final class PipedServer: @unchecked Sendable {
    let input = Pipe()
    let output = Pipe()
    let server: Server
    private var status: Int32?
    private let done = DispatchSemaphore(value: 0)
    private let outputEnded = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var received = Data()

    init(slowMillis: Int) {
        // The pipes close when the test ends, maybe while the server writes.
        ignoreBrokenPipes()
        let slow = MethodSpec("test.slow") { _, _ in
            try await Task.sleep(for: .milliseconds(slowMillis))
            return "slept"
        }
        server = Server(
            options: ServerOptions(), logger: .disabled,
            extensions: [ServerExtension(methods: [slow])],
            input: input.fileHandleForReading.fileDescriptor,
            output: output.fileHandleForWriting.fileDescriptor)
        Thread.detachNewThread { [self] in
            status = server.run(handleSignals: false)
            done.signal()
        }
        Thread.detachNewThread { [self] in
            // read(2) itself: FileHandle.read(upToCount:) waits for a full buffer.
            let fd = output.fileHandleForReading.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                lock.withLock { received.append(contentsOf: buffer[0..<n]) }
            }
            outputEnded.signal()
        }
    }

    func send(_ line: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    func closeInput() { try? input.fileHandleForWriting.close() }

    var messages: [JSONValue] {
        let data = lock.withLock { received }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            (try? JSONParser.parse(String($0))) ?? .string(String($0))
        }
    }

    /// Waits until `count` messages arrived (or 20 s passed).
    func waitForMessages(_ count: Int) async -> [JSONValue] {
        for _ in 0..<4000 {
            let current = messages
            if current.count >= count { return current }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return messages
    }

    /// Waits for `run` to return and for the output to end. Async, so the
    /// waiting never holds one of the few threads the server's tasks run on.
    func finish() async -> (status: Int32?, messages: [JSONValue]) {
        let finished = await blockingWait(done)
        guard finished else { return (nil, messages) }
        try? output.fileHandleForWriting.close()
        _ = await blockingWait(outputEnded)
        return (status, messages)
    }

    /// Up to 240 s: the server's tasks share the tests' task pool (one
    /// thread per core), which the rest of the suite can hold; a loaded
    /// machine made a 300 ms call take 28 s, and one full run held it
    /// for about 100 s at its start (every test started then finished
    /// late). What is checked is the order and the exit, not the time.
    private func blockingWait(_ semaphore: DispatchSemaphore) async -> Bool {
        await onThreadOfItsOwn { semaphore.wait(timeout: .now() + 240) == .success }
    }
}

@Suite struct ServerLifecycle {
    @Test func endOfInputWaitsForSlowRequests() async {
        let s = PipedServer(slowMillis: 300)
        for i in 0..<20 { s.send(#"{"jsonrpc":"2.0","id":\#(i),"method":"test.slow"}"#) }
        s.closeInput()
        let (status, messages) = await s.finish()
        #expect(status == 0)
        #expect(messages.count == 20)
        #expect(messages.allSatisfy { $0["result"] == "slept" })
    }

    @Test func shutdownAnswersAfterTheRequestsInFlight() async {
        let s = PipedServer(slowMillis: 300)
        s.send(#"{"jsonrpc":"2.0","id":"slow","method":"test.slow"}"#)
        s.send(#"{"jsonrpc":"2.0","id":"down","method":"shutdown"}"#)
        s.send(#"{"jsonrpc":"2.0","id":"late","method":"test.slow"}"#)
        s.closeInput()
        let (status, messages) = await s.finish()
        #expect(status == 0)
        let order = messages.compactMap { $0["id"]?.stringValue }
        // "late" is refused at once; "down" only after "slow" finished.
        #expect(order == ["late", "slow", "down"])
        #expect(messages.first?["error"]?["data"]?["reason"] == "shutting_down")
    }

    @Test func statsCountRequestsByMethod() async {
        let s = PipedServer(slowMillis: 1)
        s.send(#"{"jsonrpc":"2.0","id":1,"method":"test.slow"}"#)
        s.send(#"{"jsonrpc":"2.0","id":2,"method":"test.slow"}"#)
        s.send(#"{"jsonrpc":"2.0","id":3,"method":"nope"}"#)
        #expect(await s.waitForMessages(3).count == 3)
        s.send(#"{"jsonrpc":"2.0","id":5,"method":"server.stats"}"#)
        s.closeInput()
        let result = await s.finish().messages.first { $0["id"] == 5 }?["result"]
        // Unknown methods are not counted; the asking call is, but not as in flight.
        #expect(result?["requests"] == ["server.stats": 1, "test.slow": 2])
        #expect(result?["inFlight"] == 0)
    }
}
