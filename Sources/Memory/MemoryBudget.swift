import Reasons
import Synchronization

/// What the calls in flight may hold in memory all together: the files
/// they keep, the blobs they read whole, the entries they are parsing and
/// the answers they are writing out. Every one of these is sized by what
/// a registry sent, and each call is bounded on its own, but many calls
/// at once multiply those bounds; the budget bounds their sum. A call that
/// would take it past its limit fails (`memory_limit`, retryable), never
/// the process.
public final class MemoryBudget: Sendable {
    /// The default limit: room for one call at its own bounds (512 MiB of
    /// files kept, and its answer written twice over before it is sent:
    /// 1.5 GiB), and for thousands of calls that read a policy's files.
    public static let defaultLimit = 2 << 30

    /// The default limit in a group limited to `containerLimit` bytes (a
    /// container's, `ContainerMemoryLimit`): half of it when that is less
    /// than `defaultLimit`, at least 16 MiB. The other half is for the
    /// content cache (an eighth at most), the process itself, and what the
    /// budget does not count.
    public static func defaultLimit(within containerLimit: Int?) -> Int {
        guard let containerLimit else { return defaultLimit }
        return min(defaultLimit, max(16 << 20, containerLimit / 2))
    }

    /// What one value fetched from outside (a manifest, a response body)
    /// may hold without being counted: the calls in flight are bounded in
    /// number, so values this small cannot hold much together, and counting
    /// every small manifest would cost every call something.
    public static let uncountedValueBytes = 64 << 10

    /// Blocks this large or larger are mapped on their own, so that when
    /// they are freed (and given back to the budget) the memory goes back
    /// to the system too. glibc would otherwise raise its threshold past
    /// each large block freed (up to 32 MiB) and keep the next ones in its
    /// arenas, one arena per thread: 64 calls on 3.8 MB manifests at a 256
    /// MiB budget peaked at 0.47-0.52 GB, now 0.24 GB.
    public static let mappedAllocationBytes = 1 << 20

    /// The most the calls in flight may hold together, in bytes.
    public let limit: Int
    private let held = Atomic<Int>(0)

    public init(limit: Int = MemoryBudget.defaultLimit) {
        self.limit = max(0, limit)
    }

    /// What the calls in flight hold now.
    public var heldBytes: Int { held.load(ordering: .relaxed) }

    /// Takes `count` bytes, or returns false (taking nothing) when they
    /// would take the budget past its limit.
    public func take(_ count: Int) -> Bool {
        guard count > 0 else { return true }
        var current = held.load(ordering: .relaxed)
        while true {
            let (next, overflow) = current.addingReportingOverflow(count)
            guard !overflow, next <= limit else { return false }
            let (exchanged, original) = held.compareExchange(
                expected: current, desired: next, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Takes `count` bytes, or throws `MemoryLimitExceeded`.
    public func takeOrThrow(_ count: Int) throws(MemoryLimitExceeded) {
        guard take(count) else { throw MemoryLimitExceeded(limit: limit, asked: count) }
    }

    /// Counts `count` bytes already held, even past the limit (output
    /// queued for the client: refusing it would lose an answer). Later
    /// takes see them.
    public func add(_ count: Int) {
        guard count > 0 else { return }
        held.add(count, ordering: .relaxed)
    }

    /// Gives back `count` bytes taken (or added) before.
    public func giveBack(_ count: Int) {
        guard count > 0 else { return }
        held.subtract(count, ordering: .relaxed)
    }
}

/// One call's part of a `MemoryBudget`: what it has taken, all given back
/// when the share goes away, that is when the call and every task it
/// started (a shared fetch inherits it) are done with it.
///
/// The dispatcher binds a share to `current` for the calls that read
/// whole files or blobs; code running for them takes from it where it
/// holds something sized from outside, before holding it. A share also
/// serves as the charge of one value fetched from outside (a response
/// body, a manifest, a download's file): the value carries it, and it is
/// given back when the last copy that carries it goes, or when what it
/// stands for is gone first (`giveBackAll`: a download's file deleted).
public final class MemoryShare: Sendable {
    /// The share of the call this task runs for, if its method holds
    /// memory of its own.
    @TaskLocal public static var current: MemoryShare?

    /// The budget this share is taken from.
    public let budget: MemoryBudget
    private let taken = Atomic<Int>(0)

    public init(of budget: MemoryBudget) { self.budget = budget }

    /// What the share holds now.
    public var heldBytes: Int { taken.load(ordering: .relaxed) }

    /// Takes `count` bytes until the share goes away, or throws when the
    /// budget has not got them.
    public func take(_ count: Int) throws(MemoryLimitExceeded) {
        guard count > 0 else { return }
        try budget.takeOrThrow(count)
        taken.add(count, ordering: .relaxed)
    }

    /// Gives back `count` bytes of what the share took (something held
    /// for a while and let go: an entry read, then parsed).
    public func giveBack(_ count: Int) {
        guard count > 0 else { return }
        taken.subtract(count, ordering: .relaxed)
        budget.giveBack(count)
    }

    /// Gives back all the share holds now, at once: what it stood for is
    /// gone before the last copy that carries it (a downloaded file
    /// deleted while a finished task still holds the blob).
    public func giveBackAll() {
        budget.giveBack(taken.exchange(0, ordering: .relaxed))
    }

    deinit { budget.giveBack(taken.load(ordering: .relaxed)) }
}

/// A call would take the memory budget past its limit: the calls in
/// flight already hold what it needs. Retryable once they are done.
public struct MemoryLimitExceeded: Error, Sendable, Equatable, CustomStringConvertible {
    public static let reason = ErrorReason.memoryLimit
    /// The budget's limit, in bytes.
    public let limit: Int
    /// What the call asked for when it was refused.
    public let asked: Int

    public init(limit: Int, asked: Int) {
        self.limit = limit
        self.asked = asked
    }

    public var message: String {
        "the calls in flight hold what this one needs: more than \(readableByteCount(limit)) together (--max-memory-bytes); retry when they are done"
    }

    public var description: String { "\(Self.reason.rawValue): \(message)" }
}
