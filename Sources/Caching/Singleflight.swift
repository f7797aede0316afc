import Locking

/// Runs identical concurrent work once: callers with the same key while a
/// flight is under way join it and get its value or error. A caller that
/// is cancelled leaves at once without disturbing the others; the work is
/// cancelled only when its last caller has left. The work runs in a task of
/// its own, on the executor its first caller prefers (`PreferredExecutor`).
public final class Singleflight<Value: Sendable>: @unchecked Sendable {
    /// Guarded by the owner's lock.
    private final class Flight: @unchecked Sendable {
        var task: Task<Void, Never>?
        /// Callers that have not left (registered as waiters or about to be).
        var members = 1
        /// The first waiter registered, kept apart: mostly it is the only
        /// one, and then no table is made.
        var firstWaiter: (id: Int, continuation: UnsafeContinuation<Value, any Error>)?
        /// The other waiters, by waiter: a client may pile thousands of
        /// identical requests on one flight and cancel them, so removal
        /// must not scan.
        var waiters: [Int: UnsafeContinuation<Value, any Error>] = [:]
        /// Callers cancelled before they were registered as waiters.
        var cancelledEarly: Set<Int> = []
        /// Set once the work is done, for callers registering late.
        var result: Result<Value, any Error>?

        /// Adds waiter `id`, in the first slot when it is free.
        func register(_ id: Int, _ continuation: UnsafeContinuation<Value, any Error>) {
            if firstWaiter == nil && waiters.isEmpty {
                firstWaiter = (id, continuation)
            } else {
                waiters[id] = continuation
            }
        }

        /// Removes waiter `id`, returning its continuation if it was waiting.
        func removeWaiter(_ id: Int) -> UnsafeContinuation<Value, any Error>? {
            if let first = firstWaiter, first.id == id {
                firstWaiter = nil
                return first.continuation
            }
            return waiters.removeValue(forKey: id)
        }
    }

    private enum Registration { case waiting, cancelled, done(Result<Value, any Error>) }

    /// A key with its hash made once: a flight looks its key up three
    /// times, and keys are digest-long.
    private struct Key: Hashable {
        let text: String
        let hash: Int

        init(_ text: String) {
            self.text = text
            hash = text.hashValue
        }

        static func == (lhs: Key, rhs: Key) -> Bool { lhs.hash == rhs.hash && lhs.text == rhs.text }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    private let lock = Lock()
    private var flights: [Key: Flight] = [:]
    private var nextWaiter = 0
    private var joinCount = 0

    public init() {}

    /// Callers that joined a flight already under way.
    public var joins: Int { lock.withLock { joinCount } }

    /// Flights under way now.
    public var inFlight: Int { lock.withLock { flights.count } }

    /// The result of `work` for `key`, shared with concurrent callers.
    nonisolated(nonsending) public func run(_ text: String, _ work: @escaping @Sendable () async throws -> Value)
        async throws -> Value
    {
        let key = Key(text)
        let (flight, waiter, isNew) = lock.withLock { () -> (Flight, Int, Bool) in
            nextWaiter += 1
            if let flight = flights[key] {
                joinCount += 1
                flight.members += 1
                return (flight, nextWaiter, false)
            }
            let flight = Flight()
            flights[key] = flight
            return (flight, nextWaiter, true)
        }
        if isNew {
            // The work runs where its first caller prefers to run.
            let task = Task(executorPreference: PreferredExecutor.current) { [self] in
                let result: Result<Value, any Error>
                do {
                    result = .success(try await work())
                } catch {
                    result = .failure(error)
                }
                finish(key, flight, result)
            }
            lock.withLock { flight.task = task }
        }
        defer { SanitizerHandOff.acquire(flight) }
        return try await withTaskCancellationHandler {
            // Unchecked: each waiter is resumed exactly once, by `finish`, by
            // its cancellation or at registration (the tests count them).
            try await withUnsafeThrowingContinuation { continuation in
                let registration = lock.withLock { () -> Registration in
                    if flight.cancelledEarly.remove(waiter) != nil { return .cancelled }
                    if let result = flight.result { return .done(result) }
                    flight.register(waiter, continuation)
                    return .waiting
                }
                switch registration {
                case .waiting: break
                case .done(let result): continuation.resume(with: result)
                case .cancelled:
                    continuation.resume(throwing: CancellationError())
                    leave(key, flight)
                }
            }
        } onCancel: {
            let continuation = lock.withLock { () -> UnsafeContinuation<Value, any Error>? in
                guard flight.result == nil else { return nil }
                guard let continuation = flight.removeWaiter(waiter) else {
                    flight.cancelledEarly.insert(waiter)
                    return nil
                }
                return continuation
            }
            if let continuation {
                continuation.resume(throwing: CancellationError())
                leave(key, flight)
            }
        }
    }

    /// One caller left early; the work is cancelled when it was the last.
    private func leave(_ key: Key, _ flight: Flight) {
        let task = lock.withLock { () -> Task<Void, Never>? in
            flight.members -= 1
            guard flight.members == 0, flight.result == nil else { return nil }
            if flights[key] === flight { flights[key] = nil }
            return flight.task
        }
        task?.cancel()
    }

    private func finish(_ key: Key, _ flight: Flight, _ result: Result<Value, any Error>) {
        let (first, others) = lock.withLock {
            () -> (UnsafeContinuation<Value, any Error>?, [Int: UnsafeContinuation<Value, any Error>]) in
            if flights[key] === flight { flights[key] = nil }
            flight.result = result
            defer {
                flight.firstWaiter = nil
                flight.waiters = [:]
            }
            return (flight.firstWaiter?.continuation, flight.waiters)
        }
        SanitizerHandOff.release(flight)
        first?.resume(with: result)
        for waiter in others.values { waiter.resume(with: result) }
    }
}
