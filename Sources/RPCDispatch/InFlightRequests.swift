import Locking

/// The requests and notifications being handled right now: the table that
/// `$/cancelRequest` looks ids up in, the count that shutdown and end of
/// input wait to drain, and per-method request counters for `server.stats`.
///
/// Hot path: the reader counts the call, creates its task outside the lock,
/// then records it; the task takes the lock once when it finishes. A task
/// that finishes before the reader has recorded it leaves its serial in
/// `finishedEarly`, so nothing stale is kept.
final class InFlightRequests: @unchecked Sendable {
    private let lock = ConditionLock()
    private var nextSerial: UInt64 = 0
    private var tasks: [UInt64: Task<Void, Never>] = [:]
    private var idBySerial: [UInt64: RequestID] = [:]
    private var serialsByID: [RequestID: [UInt64]] = [:]
    private var finishedEarly: Set<UInt64> = []
    private var active = 0
    private var capacityWaiters = 0
    private var drainWaiters: [(limit: Int, continuation: CheckedContinuation<Void, Never>)] = []
    private var requestsByMethodCounts: [String: Int] = [:]

    /// Starts `body` as a task registered under `id` (nil for notifications).
    /// Called from the reader thread only, in input order, so a cancel read
    /// after this call always finds the task.
    func start(id: RequestID?, method: String, _ body: @escaping @Sendable () async -> Void) {
        let serial = nextSerial  // only the reader thread touches nextSerial
        nextSerial &+= 1
        lock.lock()
        active += 1
        requestsByMethodCounts[method, default: 0] += 1
        lock.unlock()
        // Created outside the lock: task creation is the slow part, and the
        // finishing side would otherwise queue behind it.
        let task = Task {
            await body()
            self.finish(serial: serial)
        }
        lock.lock()
        if finishedEarly.remove(serial) == nil {
            tasks[serial] = task
            if let id {
                idBySerial[serial] = id
                serialsByID[id, default: []].append(serial)
            }
        }
        lock.unlock()
    }

    private func finish(serial: UInt64) {
        var ready: [CheckedContinuation<Void, Never>] = []
        lock.lock()
        active -= 1
        if tasks.removeValue(forKey: serial) != nil {
            if let id = idBySerial.removeValue(forKey: serial), var serials = serialsByID[id] {
                serials.removeAll { $0 == serial }
                serialsByID[id] = serials.isEmpty ? nil : serials
            }
        } else {
            finishedEarly.insert(serial)
        }
        if !drainWaiters.isEmpty {
            let count = active
            drainWaiters.removeAll { waiter in
                guard count <= waiter.limit else { return false }
                ready.append(waiter.continuation)
                return true
            }
        }
        if capacityWaiters > 0 { lock.broadcast() }
        lock.unlock()
        for continuation in ready { continuation.resume() }
    }

    /// Cancels every in-flight request with this id; false if there was none.
    @discardableResult
    func cancel(id: RequestID) -> Bool {
        let found: [Task<Void, Never>] = lock.withLock {
            (serialsByID[id] ?? []).compactMap { tasks[$0] }
        }
        for task in found { task.cancel() }
        return !found.isEmpty
    }

    /// Cancels everything in flight.
    func cancelAll() {
        let all = lock.withLock { Array(tasks.values) }
        for task in all { task.cancel() }
    }

    var count: Int { lock.withLock { active } }

    /// Requests started so far, by method.
    var requestsByMethod: [String: Int] { lock.withLock { requestsByMethodCounts } }

    /// Blocks the calling OS thread (the reader) while `limit` or more calls
    /// are in flight.
    func waitForCapacity(limit: Int) {
        lock.lock()
        while active >= limit {
            capacityWaiters += 1
            lock.wait()
            capacityWaiters -= 1
        }
        lock.unlock()
    }

    /// Returns once at most `limit` calls are in flight.
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
