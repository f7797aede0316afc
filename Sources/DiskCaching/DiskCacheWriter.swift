import Dispatch
import Locking

/// The disk writes of one cache, made behind the answers: a request that
/// fetched content answers at once, and one serial queue creates the files
/// (creating files is the slow part of the cache on some disks). Work runs
/// in the order it was queued, so a fetch lock queued after a fetch's
/// writes is released only once they are on disk.
///
/// Memory is bounded: while `maxPendingBytes` of content wait, a new write
/// is made on the caller's thread instead of queued.
final class DiskCacheWriter: Sendable {
    /// Bytes of content that may wait to be written.
    static let maxPendingBytes = 64 << 20

    private let queue = DispatchQueue(label: "ocirpc.disk-cache-write", qos: .default)
    private let group = DispatchGroup()
    private let pendingBytes = Locked(0)

    /// Runs `work` (writing `bytes` of content) on the queue, or right here
    /// when the queue already holds `maxPendingBytes`.
    func enqueue(bytes: Int, _ work: @escaping @Sendable () -> Void) {
        let queued = pendingBytes.withLock { pending in
            guard pending == 0 || bytes <= Self.maxPendingBytes - pending else { return false }
            pending += bytes
            return true
        }
        guard queued else {
            work()
            return
        }
        queue.async(group: group) { [pendingBytes] in
            work()
            pendingBytes.withLock { $0 -= bytes }
        }
    }

    /// Waits until everything queued so far is done, at most `timeout`
    /// seconds; false when that was not enough.
    func flush(timeout: Double) -> Bool {
        group.wait(timeout: .now() + timeout) == .success
    }
}
