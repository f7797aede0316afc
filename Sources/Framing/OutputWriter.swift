import Glibc
import Locking
import Memory

/// The single writer of stdout: messages are framed, queued and written
/// whole by one thread, which coalesces everything queued since its last
/// `write(2)` into the next one. Never interleaves two messages.
public final class OutputWriter: @unchecked Sendable {
    private let fd: Int32
    private let lock = ConditionLock()
    private var queued: [UInt8] = []
    private var spare: [UInt8] = []
    private var writing = 0
    private var writerIdle = false
    private var mode: FramingMode = .newlineDelimited
    private var closed = false
    private var broken = false
    private let onBrokenPipe: @Sendable () -> Void
    /// Counts what is queued and not yet written, so that calls see the
    /// answers a slow client has not read yet.
    private let memory: MemoryBudget?
    /// Tasks waiting for the output to drain below their mark
    /// (`waitForRoom`), by ticket.
    private var roomWaiters: [UInt64: (limit: Int, continuation: CheckedContinuation<Void, Never>)] = [:]
    /// Whether the writer's thread started; when not
    /// (`threadShortageExplanation`), nothing is ever written.
    public private(set) var isRunning = false
    private var nextTicket: UInt64 = 0

    /// - Parameters:
    ///   - fd: where to write (stdout).
    ///   - memory: where what is queued and not yet written is counted.
    ///   - onBrokenPipe: called once, from the writer thread, when the
    ///     reader of `fd` has gone away (EPIPE or another write error).
    public init(fd: Int32, memory: MemoryBudget? = nil, onBrokenPipe: @escaping @Sendable () -> Void = {}) {
        self.fd = fd
        self.memory = memory
        self.onBrokenPipe = onBrokenPipe
        queued.reserveCapacity(1 << 16)
        spare.reserveCapacity(1 << 16)
        isRunning = startThreadIfPossible(stackSize: 1 << 20) { [self] in run() }
    }

    /// Sets the framing for every later message.
    public func setMode(_ mode: FramingMode) {
        lock.withLock { self.mode = mode }
    }

    /// Queues one serialized JSON message.
    public func send(_ payload: [UInt8]) {
        lock.lock()
        if !broken {
            let before = queued.count
            mode.frame(payload, into: &queued)
            memory?.add(queued.count - before)
            if writerIdle { lock.broadcast() }
        }
        lock.unlock()
    }

    /// Bytes queued or being written.
    public var pendingBytes: Int {
        lock.withLock { queued.count + writing }
    }

    /// Blocks the calling thread until fewer than `limit` bytes are pending
    /// (the reader's backpressure), or the output is broken or closed.
    public func waitUntilPending(below limit: Int) {
        lock.lock()
        while !broken && !closed && queued.count + writing >= limit { lock.wait() }
        lock.unlock()
    }

    /// Suspends the calling task until fewer than `limit` bytes are
    /// pending, or the output is broken or closed, or the task is
    /// cancelled: the backpressure of a task that streams notifications
    /// (a batch's workers), so that a client reading slowly holds them
    /// back instead of growing the queue.
    public func waitForRoom(below limit: Int) async {
        let ticket: UInt64? = lock.withLock {
            guard !hasRoom(below: limit) else { return nil }
            nextTicket += 1
            return nextTicket
        }
        guard let ticket else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock {
                    if hasRoom(below: limit) || Task.isCancelled { return true }
                    roomWaiters[ticket] = (limit, continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            lock.withLock { roomWaiters.removeValue(forKey: ticket) }?.continuation.resume()
        }
    }

    /// Whether a waiter for `limit` may go on (with the lock held).
    private func hasRoom(below limit: Int) -> Bool {
        broken || closed || queued.count + writing < limit
    }

    /// The waiters that may go on now, taken out (with the lock held).
    private func waitersWithRoom() -> [CheckedContinuation<Void, Never>] {
        guard !roomWaiters.isEmpty else { return [] }
        let ready = roomWaiters.filter { hasRoom(below: $0.value.limit) }
        for ticket in ready.keys { roomWaiters[ticket] = nil }
        return ready.values.map(\.continuation)
    }

    /// Blocks until everything queued so far has been written (or the
    /// output broke).
    public func flush() {
        lock.lock()
        while !broken && (!queued.isEmpty || writing > 0) { lock.wait() }
        lock.unlock()
    }

    /// Writes what is queued, then ends the writer thread.
    public func close() {
        let ready = lock.withLock {
            closed = true
            lock.broadcast()
            return waitersWithRoom()
        }
        for waiter in ready { waiter.resume() }
    }

    /// True once a write failed (the client closed our stdout).
    public var isBroken: Bool { lock.withLock { broken } }

    private func run() {
        while true {
            lock.lock()
            while queued.isEmpty && !closed {
                writerIdle = true
                lock.wait()
            }
            writerIdle = false
            if queued.isEmpty && closed {
                lock.unlock()
                return
            }
            swap(&queued, &spare)
            writing = spare.count
            lock.unlock()

            let ok = spare.withUnsafeBytes { writeAll(fd, $0) }

            lock.lock()
            writing = 0
            memory?.giveBack(spare.count)
            spare.removeAll(keepingCapacity: spare.capacity <= 4 << 20)
            if !ok {
                broken = true
                memory?.giveBack(queued.count)
                queued = []
            }
            lock.broadcast()
            let ready = waitersWithRoom()
            lock.unlock()
            for waiter in ready { waiter.resume() }
            if !ok {
                onBrokenPipe()
                return
            }
        }
    }
}
