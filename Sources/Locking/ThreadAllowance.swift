/// How many threads of one kind may run at once: each takes a place before
/// it starts (`admit`) and gives it back when done (`leave`).
public final class ThreadAllowance: Sendable {
    public let maxThreads: Int
    private let running = Locked(0)

    public init(maxThreads: Int) { self.maxThreads = maxThreads }

    /// Threads holding a place now.
    public var threadsRunning: Int { running.withLock { $0 } }

    /// Takes a place; false, taking nothing, when all are taken.
    public func admit() -> Bool {
        running.withLock { count in
            guard count < maxThreads else { return false }
            count += 1
            return true
        }
    }

    /// Gives a place back.
    public func leave() { running.withLock { $0 -= 1 } }
}
