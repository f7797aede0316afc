/// How many threads of one kind may run at once: each takes a place before
/// it starts (`admit`) and gives it back when done (`leave`).
package final class ThreadAllowance: Sendable {
    package let maxThreads: Int
    private let running = Locked(0)

    package init(maxThreads: Int) { self.maxThreads = maxThreads }

    /// Threads holding a place now.
    package var threadsRunning: Int { running.withLock { $0 } }

    /// Takes a place; false, taking nothing, when all are taken.
    package func admit() -> Bool {
        running.withLock { count in
            guard count < maxThreads else { return false }
            count += 1
            return true
        }
    }

    /// Gives a place back.
    package func leave() { running.withLock { $0 -= 1 } }
}
