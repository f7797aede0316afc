import Locking

/// How far a blob's download to a file has come, for a reader that follows
/// it while it arrives (the methods decompress a layer as it downloads).
/// Each attempt (a retry, a mirror, the request made again after a
/// challenge) writes a file of its own, and a reader of an earlier one has
/// lost the thread. Bytes read before the download is verified are
/// untrusted: what a reader made of them counts only once `end(verified:)`
/// names the file it read as the verified blob.
public final class DownloadProgress: @unchecked Sendable {
    /// What a waiting reader sees.
    public struct State: Sendable, Equatable {
        /// The file the latest attempt writes, if one has begun.
        public var path: String?
        /// Bytes written to it, and readable, so far.
        public var written = 0
        /// Set once the download is over: the verified file's path, or nil
        /// when it failed.
        public var ended: Ended?
        /// The reader's call was cancelled.
        public var cancelled = false
    }

    /// How the download ended.
    public enum Ended: Sendable, Equatable {
        case verified(path: String)
        case failed
    }

    private let lock = ConditionLock()
    private var state = State()
    /// Callers of `reached` waiting for a count of bytes.
    private var waiters: [(count: Int, continuation: CheckedContinuation<Bool, Never>)] = []

    public init() {}

    /// An attempt created `path` and writes it from its first byte.
    package func began(path: String) {
        update { $0 = State(path: path, written: 0, ended: $0.ended, cancelled: $0.cancelled) }
    }

    /// The attempt writing `path` has written (and flushed) `total` bytes.
    package func wrote(_ total: Int, to path: String) {
        update { if $0.path == path { $0.written = total } }
    }

    /// The download is over: verified as the file at `path`, or failed (nil).
    public func end(verified path: String?) {
        update { $0.ended = path.map { .verified(path: $0) } ?? .failed }
    }

    /// The call was cancelled: a waiting reader stops.
    public func cancel() { update { $0.cancelled = true } }

    /// Waits until `changed` holds of the state, and returns it.
    public func wait(until changed: (State) -> Bool) -> State {
        lock.lock()
        defer { lock.unlock() }
        while !changed(state) { lock.wait() }
        return state
    }

    /// Waits, without holding a thread, until the attempt under way has
    /// written `count` bytes (true), or the download is over or the call
    /// cancelled before that (false).
    public func reached(_ count: Int) async -> Bool {
        defer { SanitizerHandOff.acquire(self) }
        return await withCheckedContinuation { continuation in
            let now: Bool? = lock.withLock {
                if let answer = Self.answer(state, count) { return answer }
                waiters.append((count, continuation))
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// What `reached(count)` answers in `state`, nil while it is not told yet.
    private static func answer(_ state: State, _ count: Int) -> Bool? {
        if state.written >= count { return true }
        return state.ended != nil || state.cancelled ? false : nil
    }

    private func update(_ change: (inout State) -> Void) {
        let told: [(CheckedContinuation<Bool, Never>, Bool)] = lock.withLock {
            change(&state)
            guard !waiters.isEmpty else { return [] }
            var told: [(CheckedContinuation<Bool, Never>, Bool)] = []
            waiters.removeAll { waiter in
                guard let answer = Self.answer(state, waiter.count) else { return false }
                told.append((waiter.continuation, answer))
                return true
            }
            return told
        }
        lock.broadcast()
        if !told.isEmpty { SanitizerHandOff.release(self) }
        for (continuation, answer) in told { continuation.resume(returning: answer) }
    }
}
