import Dispatch
import Glibc
import Memory
import Synchronization
import TestFixtures
import Testing
@testable import Framing

/// Reads everything from `fd` until end of file on a thread of its own:
/// a blocking read must never hold one of the few threads the tasks of
/// every test share.
private func readAllElsewhere(_ fd: Int32) async -> [UInt8] {
    await onThreadOfItsOwn { readAll(fd) }
}

/// Reads everything from `fd` until end of file.
private func readAll(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return out
}

@Suite struct OutputWriterBehaviour {
    @Test func writesEveryMessageWholeAndInOrder() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = OutputWriter(fd: fds[1])
        // Fits in the pipe buffer, so it can be read after the writes.
        let expected = (0..<2000).map { "{\"n\":\($0)}" }
        for message in expected { writer.send(Array(message.utf8)) }
        writer.flush()
        writer.close()
        close(fds[1])
        #expect(String(decoding: readAll(fds[0]), as: UTF8.self) == expected.map { $0 + "\n" }.joined())
        close(fds[0])
    }

    @Test func contentLengthModeFramesEachMessage() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = OutputWriter(fd: fds[1])
        writer.setMode(.contentLength)
        writer.send(Array("{}".utf8))
        writer.send(Array("[1,2]".utf8))
        writer.flush()
        writer.close()
        close(fds[1])
        #expect(
            String(decoding: readAll(fds[0]), as: UTF8.self)
                == "Content-Length: 2\r\n\r\n{}Content-Length: 5\r\n\r\n[1,2]")
        close(fds[0])
    }

    @Test func whatTheClientHasNotReadIsCountedUntilItIsWritten() async {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let memory = MemoryBudget(limit: 1 << 30)
        let writer = OutputWriter(fd: fds[1], memory: memory)
        // Four times a pipe's buffer: most of it waits for the reader.
        let message = [UInt8](repeating: UInt8(ascii: "1"), count: 256 << 10)
        writer.send(message)
        #expect(memory.heldBytes == message.count + 1)
        let readEnd = fds[0]
        async let read = readAllElsewhere(readEnd)
        await onThreadOfItsOwn { writer.flush() }
        #expect(memory.heldBytes == 0)
        writer.close()
        close(fds[1])
        #expect(await read.count == message.count + 1)
        close(readEnd)
    }

    @Test func aStreamingTaskWaitsForTheClientToTakeWhatWasSent() async {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = OutputWriter(fd: fds[1])
        await writer.waitForRoom(below: 1024)  // nothing pending: at once
        // Four times a pipe's buffer, unread.
        writer.send([UInt8](repeating: UInt8(ascii: "1"), count: 256 << 10))
        let waited = Task { await writer.waitForRoom(below: 1024) }
        let cancelled = Task { await writer.waitForRoom(below: 1024) }
        try? await Task.sleep(for: .milliseconds(200))
        #expect(writer.pendingBytes > 1024)
        cancelled.cancel()
        await cancelled.value
        let readEnd = fds[0]
        async let read = readAllElsewhere(readEnd)
        await waited.value
        #expect(writer.pendingBytes < 1024)
        writer.close()
        close(fds[1])
        #expect(await read.count == (256 << 10) + 1)
        close(readEnd)
    }

    @Test func whatABrokenOutputHeldIsGivenBack() {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        let memory = MemoryBudget(limit: 1 << 30)
        let writer = OutputWriter(fd: fds[1], memory: memory)
        for _ in 0..<100 { writer.send([UInt8](repeating: 0x31, count: 10_000)) }
        writer.flush()
        #expect(writer.isBroken)
        writer.send(Array("{}".utf8))
        #expect(memory.heldBytes == 0)
        writer.close()
        close(fds[1])
    }

    @Test func closedReaderIsReportedOnceAndFlushReturns() {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        let reports = Atomic<Int>(0)
        let writer = OutputWriter(fd: fds[1]) { reports.add(1, ordering: .relaxed) }
        writer.send(Array("{}".utf8))
        writer.flush()
        #expect(writer.isBroken)
        writer.send(Array("{}".utf8))  // dropped, not crashing
        writer.flush()
        // The report comes from the writer thread just after it marks the
        // output broken.
        var waited = 0
        while reports.load(ordering: .relaxed) == 0 && waited < 5000 {
            usleep(1000)
            waited += 1
        }
        usleep(10_000)
        #expect(reports.load(ordering: .relaxed) == 1)
        close(fds[1])
    }
}
