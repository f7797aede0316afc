import Locking

/// The calls the server has taken: running ones (each a Swift task) and,
/// past `maxRunning`, waiting ones parked in a queue bounded by bytes.
/// It is the table that `$/cancelRequest` looks ids up in (a waiting call
/// is dropped and answered at once), the count that shutdown and end of
/// input wait to drain, and the per-method counters of `server.stats`.
///
/// A waiting call holds its method, its bound params and where to reply
/// (about a KB), not a task, so 100,000 pipelined slow calls cost about
/// 100 MB while the reader goes on reading control messages.
final class InFlightRequests: @unchecked Sendable {
    /// A call accepted but not yet started.
    private struct Waiting {
        let cost: Int
        let call: PendingCall
    }

    /// Turns a call into the body of its task (set by the dispatcher).
    private let makeBody: @Sendable (PendingCall) -> @Sendable () async -> Void

    let maxRunning: Int
    let maxQueuedBytes: Int
    private let lock = ConditionLock()
    private var nextSerial: UInt64 = 0
    private var tasks: [UInt64: Task<Void, Never>] = [:]
    private var idBySerial: [UInt64: RequestID] = [:]
    private var serialsByID: [RequestID: [UInt64]] = [:]
    /// Launched, but the task not recorded yet.
    private var launching: Set<UInt64> = []
    private var cancelWhenRecorded: Set<UInt64> = []
    private var finishedEarly: Set<UInt64> = []
    private var waiting: [UInt64: Waiting] = [:]
    private var queue: [UInt64] = []
    private var queueHead = 0
    private var queuedBytes = 0
    private var running = 0
    /// Running plus waiting.
    private var active = 0
    private var capacityWaiters = 0
    /// OS threads blocked in `waitUntilCount(atMost:seconds:)`.
    private var countWaiters = 0
    private var drainWaiters: [(limit: Int, continuation: CheckedContinuation<Void, Never>)] = []
    private var requestsByMethodCounts: [String: Int] = [:]

    init(
        maxRunning: Int, maxQueuedBytes: Int, makeBody: @escaping @Sendable (PendingCall) -> @Sendable () async -> Void
    ) {
        self.maxRunning = max(1, maxRunning)
        self.maxQueuedBytes = max(1, maxQueuedBytes)
        self.makeBody = makeBody
    }

    /// Takes `call`: runs it as a task now when fewer than `maxRunning` run
    /// (control methods, `runsImmediately`, have an allowance of their
    /// own), else parks it with its params as text. Called from the reader
    /// thread only, in input order, so a cancel read after this call always
    /// finds it.
    func start(_ call: PendingCall) {
        let serial = nextSerial  // only the reader thread touches nextSerial
        nextSerial &+= 1
        lock.lock()
        active += 1
        requestsByMethodCounts[call.spec.name, default: 0] += 1
        if let id = call.id {
            idBySerial[serial] = id
            serialsByID[id, default: []].append(serial)
        }
        let runNow = running < maxRunning || (call.spec.runsImmediately && running < 2 * maxRunning)
        if runNow {
            running += 1
            launching.insert(serial)
            lock.unlock()
            launch(serial, makeBody(call))
            return
        }
        let cost = call.parkedCost
        waiting[serial] = Waiting(cost: cost, call: call)
        queue.append(serial)
        queuedBytes += cost
        lock.unlock()
    }

    /// Creates the task outside the lock (the slow part), then records it.
    private func launch(_ serial: UInt64, _ body: @escaping @Sendable () async -> Void) {
        let task = Task {
            await body()
            self.finish(serial: serial)
        }
        lock.lock()
        launching.remove(serial)
        let cancel = cancelWhenRecorded.remove(serial) != nil
        if finishedEarly.remove(serial) == nil { tasks[serial] = task }
        lock.unlock()
        if cancel { task.cancel() }
    }

    private func finish(serial: UInt64) {
        lock.lock()
        active -= 1
        running -= 1
        if tasks.removeValue(forKey: serial) == nil { finishedEarly.insert(serial) }
        forget(serial)
        let next = takeNext()
        let ready = readyDrainWaiters()
        if capacityWaiters > 0 || countWaiters > 0 { lock.broadcast() }
        lock.unlock()
        for (serial, call) in next { launch(serial, makeBody(call)) }
        for continuation in ready { continuation.resume() }
    }

    /// Waiting calls to start now that room was made (under the lock).
    private func takeNext() -> [(UInt64, PendingCall)] {
        var next: [(UInt64, PendingCall)] = []
        while running < maxRunning, queueHead < queue.count {
            let serial = queue[queueHead]
            queueHead += 1
            guard let call = waiting.removeValue(forKey: serial) else { continue }
            queuedBytes -= call.cost
            running += 1
            launching.insert(serial)
            next.append((serial, call.call))
        }
        if queueHead > 4096 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        return next
    }

    /// Drops the id bookkeeping of a call that ended (under the lock).
    private func forget(_ serial: UInt64) {
        if let id = idBySerial.removeValue(forKey: serial), var serials = serialsByID[id] {
            serials.removeAll { $0 == serial }
            serialsByID[id] = serials.isEmpty ? nil : serials
        }
    }

    private func readyDrainWaiters() -> [CheckedContinuation<Void, Never>] {
        guard !drainWaiters.isEmpty else { return [] }
        var ready: [CheckedContinuation<Void, Never>] = []
        let count = active
        drainWaiters.removeAll { waiter in
            guard count <= waiter.limit else { return false }
            ready.append(waiter.continuation)
            return true
        }
        return ready
    }

    /// Cancels every call with this id: a running one's task is cancelled
    /// (it answers -32800 itself), a waiting one is dropped and answered
    /// -32800 at once. False if there was none.
    @discardableResult
    func cancel(id: RequestID) -> Bool {
        cancel { serialsByID[id] ?? [] } > 0
    }

    /// Cancels the calls `pick` names (under the lock); returns how many.
    private func cancel(_ pick: () -> [UInt64]) -> Int {
        lock.lock()
        let serials = pick()
        let (found, dropped) = cancelLocked(serials)
        let ready = readyDrainWaiters()
        if capacityWaiters > 0 || countWaiters > 0 { lock.broadcast() }
        lock.unlock()
        for task in found { task.cancel() }
        for waiting in dropped { waiting.call.answerCancelled() }
        for continuation in ready { continuation.resume() }
        return serials.count
    }

    private func cancelLocked(_ serials: [UInt64]) -> ([Task<Void, Never>], [Waiting]) {
        var found: [Task<Void, Never>] = []
        var dropped: [Waiting] = []
        for serial in serials {
            if let task = tasks[serial] {
                found.append(task)
            } else if let call = waiting.removeValue(forKey: serial) {
                queuedBytes -= call.cost
                active -= 1
                forget(serial)
                dropped.append(call)
            } else if launching.contains(serial) {
                cancelWhenRecorded.insert(serial)
            }
        }
        return (found, dropped)
    }

    /// Cancels everything taken: running and waiting calls alike.
    func cancelAll() {
        _ = cancel { Array(tasks.keys) + Array(waiting.keys) + Array(launching) }
    }

    /// Calls running or waiting.
    var count: Int { lock.withLock { active } }

    /// Calls waiting for a turn, and the bytes they count for.
    var queued: (calls: Int, bytes: Int) { lock.withLock { (waiting.count, queuedBytes) } }

    /// Requests started so far, by method.
    var requestsByMethod: [String: Int] { lock.withLock { requestsByMethodCounts } }

    /// Blocks the calling OS thread (the reader) while the waiting calls
    /// fill the queue's bytes.
    func waitForCapacity() {
        lock.lock()
        while queuedBytes >= maxQueuedBytes {
            capacityWaiters += 1
            lock.wait()
            capacityWaiters -= 1
        }
        lock.unlock()
    }

    /// Blocks the calling OS thread until at most `limit` calls are
    /// running or waiting, for at most `seconds` (for ever when nil); false
    /// when the time ran out. Needs no task to run: the end of a session
    /// waits here even when no thread can start.
    func waitUntilCount(atMost limit: Int, seconds: Double?) -> Bool {
        let deadline = seconds.map { ConditionLock.deadline(after: $0) }
        lock.lock()
        defer { lock.unlock() }
        while active > limit {
            countWaiters += 1
            defer { countWaiters -= 1 }
            if let deadline {
                if !lock.wait(until: deadline) { return active <= limit }
            } else {
                lock.wait()
            }
        }
        return true
    }

    /// Returns once at most `limit` calls are running or waiting.
    func waitUntilCount(atMost limit: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock {
                if active <= limit { return true }
                drainWaiters.append((limit, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
