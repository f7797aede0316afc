import Synchronization

/// The requests and notifications being handled right now: the table that
/// `$/cancelRequest` looks ids up in, the count that shutdown and end of
/// input wait to drain, and per-method request counters for `server.stats`.
final class InFlightRequests: Sendable {
    private struct State {
        var nextSerial: UInt64 = 0
        var tasks: [UInt64: Task<Void, Never>] = [:]
        var serialsByID: [RequestID: [UInt64]] = [:]
        var drainWaiters: [(limit: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var requestsByMethod: [String: Int] = [:]
    }

    private let state = Mutex(State())

    /// Starts `body` as a task registered under `id` (nil for notifications).
    /// The task is in the table before it can run, so a cancel that arrives
    /// right after always finds it.
    func start(
        id: RequestID?, method: String,
        _ body: @escaping @Sendable () async -> Void
    ) {
        state.withLock { state in
            let serial = state.nextSerial
            state.nextSerial += 1
            state.requestsByMethod[method, default: 0] += 1
            let task = Task {
                await body()
                self.finish(serial: serial, id: id)
            }
            state.tasks[serial] = task
            if let id { state.serialsByID[id, default: []].append(serial) }
        }
    }

    private func finish(serial: UInt64, id: RequestID?) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { state in
            state.tasks[serial] = nil
            if let id, var serials = state.serialsByID[id] {
                serials.removeAll { $0 == serial }
                state.serialsByID[id] = serials.isEmpty ? nil : serials
            }
            let count = state.tasks.count
            var ready: [CheckedContinuation<Void, Never>] = []
            state.drainWaiters.removeAll { waiter in
                guard count <= waiter.limit else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Cancels every in-flight request with this id; false if there was none.
    @discardableResult
    func cancel(id: RequestID) -> Bool {
        let tasks: [Task<Void, Never>] = state.withLock { state in
            (state.serialsByID[id] ?? []).compactMap { state.tasks[$0] }
        }
        for task in tasks { task.cancel() }
        return !tasks.isEmpty
    }

    /// Cancels everything in flight.
    func cancelAll() {
        let tasks = state.withLock { Array($0.tasks.values) }
        for task in tasks { task.cancel() }
    }

    var count: Int { state.withLock { $0.tasks.count } }

    /// Requests started so far, by method.
    var requestsByMethod: [String: Int] { state.withLock { $0.requestsByMethod } }

    /// Returns once at most `limit` tasks are in flight.
    func waitUntilCount(atMost limit: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if state.tasks.count <= limit { return true }
                state.drainWaiters.append((limit, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
