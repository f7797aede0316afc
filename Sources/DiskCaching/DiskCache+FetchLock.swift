import CSystem
import CZlib
import Glibc
import Registry

extension DiskCache {
    /// How long a process waits for another that is fetching the same
    /// content before fetching it too.
    public static let maxFetchLockWait: Duration = .seconds(60)

    /// The fetch locks: bytes of one file, `ocirpc/v2/fetch.lock`, a key's
    /// lock the byte at its hash modulo this. No file per key: creating
    /// files is what costs most on some disks.
    static let fetchLockSlots: UInt64 = 1 << 30

    /// The byte that is `key`'s lock: its CRC-32 (the same in every
    /// process, unlike Swift's seeded hashing) modulo `fetchLockSlots`. Two
    /// keys that share a slot only make one fetch wait for the other.
    static func fetchLockSlot(_ key: String) -> Int64 {
        var key = key
        let sum = key.withUTF8 { UInt64(crc32(0, $0.baseAddress, uInt($0.count))) }
        return Int64(bitPattern: sum % fetchLockSlots)
    }

    /// Runs `fetch` holding the cross-process lock for `key` (a tag
    /// reference, or a blob's digest): processes started together on the
    /// same cold content fetch it once, the others waiting and then finding
    /// it on disk (`fetch` is told whether it waited, and then looks again
    /// first). The lock is an
    /// open-file-description lock on one byte of `ocirpc/v2/fetch.lock`,
    /// released once `fetch` has returned, its appends made (or when the
    /// process dies); requests of one
    /// process never wait on each other through it. When it cannot be taken
    /// (a disk that fails, a holder past `maxFetchLockWait`) `fetch` runs
    /// without it. Cancelling the waiting task cancels the wait.
    public func withFetchLock<T>(_ key: String, _ fetch: (_ waited: Bool) async throws -> T) async throws -> T {
        guard let fd = fetchLockFile else { return try await fetch(false) }
        let slot = Self.fetchLockSlot(key)
        let clock = ContinuousClock()
        let deadline = clock.now + Self.maxFetchLockWait
        var locked = ocirpc_ofd_trylock(fd, slot) == 0
        let waited = !locked
        while !locked && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            locked = ocirpc_ofd_trylock(fd, slot) == 0
        }
        defer {
            if locked { ocirpc_ofd_unlock(fd, slot) }
        }
        return try await fetch(waited)
    }
}
