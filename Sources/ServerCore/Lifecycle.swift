import Dispatch
import Locking
import Synchronization

/// How a session ends, made before anything that can end it: the exit
/// code (set once), whether `shutdown` came first, whether reading has
/// stopped, and the signal `Server.run` waits for. The writer's broken-pipe
/// callback, the core methods and the signal handlers all hold this.
final class Lifecycle: Sendable {
    private let exitCode = Locked<Int32?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    private let shutdownRequested = Atomic<Bool>(false)
    private let readingStopped = Atomic<Bool>(false)
    private let finishHook = Locked<(@Sendable () -> Void)?>(nil)

    /// Ends the session with `code`; later calls change nothing.
    func finish(_ code: Int32) {
        let first = exitCode.withLock { current -> Bool in
            guard current == nil else { return false }
            current = code
            return true
        }
        guard first else { return }
        finished.signal()
        finishHook.withLock { $0 }?()
    }

    /// Runs `hook` when the session ends (at once if it has): for a waiter
    /// that waits on something else too.
    func onFinish(_ hook: @escaping @Sendable () -> Void) {
        finishHook.withLock { $0 = hook }
        if code != nil { hook() }
    }

    /// The exit code, once the session has ended.
    var code: Int32? { exitCode.withLock { $0 } }

    /// Blocks until `finish`, and returns its code.
    func waitUntilFinished() -> Int32 {
        finished.wait()
        return exitCode.withLock { $0 } ?? 0
    }

    /// `shutdown` was received.
    func requestShutdown() { shutdownRequested.store(true, ordering: .relaxed) }

    /// `exit`: 0 after `shutdown`, else 1.
    func exitRequested() { finish(shutdownRequested.load(ordering: .relaxed) ? 0 : 1) }

    /// Stops reading input; true only for the first caller (a signal).
    func stopReading() -> Bool { !readingStopped.exchange(true, ordering: .relaxed) }

    var isReadingStopped: Bool { readingStopped.load(ordering: .relaxed) }
}
