import Locking
import Memory

/// Work handed to another thread, with the call's `MemoryShare`, run once.
/// The thread lets go of the work, and of all it captured (a verified
/// blob's share of the downloads, the files read so far), before it tells
/// the caller the result. A dispatch block or a thread's closure is
/// released only after it returns; by then the caller may have answered,
/// and a client asking `server.stats` next found the download still held.
final class HandedOverWork<T: Sendable>: Sendable {
    private let held: Locked<(work: @Sendable () throws -> T, share: MemoryShare?)?>

    init(_ share: MemoryShare?, _ work: @escaping @Sendable () throws -> T) {
        held = Locked((work, share))
    }

    /// Runs the work (once; later calls fail), then lets go of it. The
    /// caller that awaits the result calls `SanitizerHandOff.acquire` on
    /// this object once it has it.
    func run() -> Result<T, any Error> {
        let taken = held.withLock { held in
            defer { held = nil }
            return held
        }
        guard let (work, share) = taken else { return .failure(CancellationError()) }
        let result = Result { try MemoryShare.$current.withValue(share, operation: work) }
        SanitizerHandOff.release(self)
        return result
    }
}
