import Dispatch
import Locking
import Testing

@testable import DiskCaching

/// The queue that writes behind the answers: order, flush and its bound.
@Suite struct DiskCacheWriterTests {
    @Test func workRunsInTheOrderQueuedAndFlushWaitsForAllOfIt() {
        let writer = DiskCacheWriter()
        let done = Locked([Int]())
        for number in 0..<100 {
            writer.enqueue(bytes: 10) { done.withLock { $0.append(number) } }
        }
        #expect(writer.flush(timeout: 10))
        #expect(done.withLock { $0 } == Array(0..<100))
    }

    @Test func pastTheBoundAWriteIsMadeOnTheCallersThreadInsteadOfQueued() {
        let writer = DiskCacheWriter()
        let release = DispatchSemaphore(value: 0)
        let done = Locked([String]())
        // The queue is busy and holds the whole bound.
        writer.enqueue(bytes: DiskCacheWriter.maxPendingBytes) {
            release.wait()
            done.withLock { $0.append("queued") }
        }
        writer.enqueue(bytes: 1) { done.withLock { $0.append("inline") } }
        // Ran before the call returned, while the queue is still held.
        #expect(done.withLock { $0 } == ["inline"])
        #expect(!writer.flush(timeout: 0.05), "the queue is still held")
        release.signal()
        #expect(writer.flush(timeout: 10))
        #expect(done.withLock { $0 } == ["inline", "queued"])
        // Drained: the bound is free again.
        writer.enqueue(bytes: DiskCacheWriter.maxPendingBytes) { done.withLock { $0.append("queued again") } }
        #expect(writer.flush(timeout: 10))
        #expect(done.withLock { $0 }.last == "queued again")
    }
}
