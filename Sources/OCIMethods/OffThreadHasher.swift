import Glibc
import Locking
import Memory
import Registry

/// Hashes bytes on an OS thread of its own while the thread that hands them
/// over reads on: a layer's decompressed bytes are hashed for its config's
/// `diff_ids` on another core than the one that decompresses them.
///
/// Bytes are copied into a few chunks of fixed size, taken from the call's
/// memory share; the reading thread waits only when every chunk is still
/// queued or being hashed. At most `Pool.maxThreads` hash at a time (in
/// the process, one fewer than the cores, so none on one core). `start`
/// returns nil when no thread, memory or core is free, and the caller
/// hashes on.
final class OffThreadHasher: @unchecked Sendable {
    /// The bytes of each chunk handed over.
    static let chunkBytes = 1 << 20
    /// How many chunks: one filled, one queued, one hashed.
    static let chunkCount = 3
    /// What a hasher takes from the memory share while it runs.
    static let memoryBytes = chunkBytes * chunkCount

    /// The threads that may hash at a time.
    typealias Pool = ThreadAllowance
    /// The process's: one fewer than the cores.
    static let sharedPool = Pool(maxThreads: max(0, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1))

    private let hasher: DigestHasher
    private let share: MemoryShare?
    private let lock = ConditionLock()
    private let chunks: [UnsafeMutableRawBufferPointer]
    // Guarded by `lock`.
    private var free: [Int]
    private var queued: [(chunk: Int, count: Int)] = []
    private var hashing = false
    private var closed = false
    // The handing thread's own.
    private var current: Int?
    private var filled = 0

    private init(hasher: DigestHasher, share: MemoryShare?) {
        self.hasher = hasher
        self.share = share
        chunks = (0..<Self.chunkCount).map { _ in
            UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkBytes, alignment: 64)
        }
        free = Array(chunks.indices)
    }

    deinit {
        for chunk in chunks { chunk.deallocate() }
        share?.giveBack(Self.memoryBytes)
    }

    /// A thread that goes on hashing into `hasher` (which it then owns
    /// until `finalize` or `close`), or nil: hash inline.
    static func start(continuing hasher: DigestHasher, share: MemoryShare?, pool: Pool) -> OffThreadHasher? {
        guard pool.admit() else { return nil }
        do {
            try share?.take(memoryBytes)
        } catch {
            pool.leave()
            return nil
        }
        let offThread = OffThreadHasher(hasher: hasher, share: share)
        // The thread lets go of the hasher before it leaves the pool: when
        // it held the last reference, whoever sees it gone sees the
        // chunks' memory given back too.
        let held = Locked<OffThreadHasher?>(offThread)
        let started = startThreadIfPossible(stackSize: 256 << 10) {
            held.withLock { $0 }?.hashUntilClosed()
            held.withLock { $0 = nil }
            pool.leave()
        }
        guard started else {
            pool.leave()
            return nil
        }
        return offThread
    }

    /// Hands `bytes` over (copied); waits only while no chunk is free.
    func update(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty {
            let chunk: Int
            if let current {
                chunk = current
            } else {
                chunk = lock.withLock {
                    while free.isEmpty { lock.wait() }
                    return free.removeLast()
                }
                current = chunk
                filled = 0
            }
            let count = min(rest.count, Self.chunkBytes - filled)
            UnsafeMutableRawBufferPointer(rebasing: chunks[chunk][filled..<filled + count])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: rest[..<count]))
            filled += count
            rest = UnsafeRawBufferPointer(rebasing: rest[count...])
            if filled == Self.chunkBytes { handOver() }
        }
    }

    /// The digest of everything passed to the hasher, inline and here.
    /// Call once; the thread is then gone.
    func finalize() -> Digest {
        handOver()
        lock.withLock {
            while !queued.isEmpty || hashing { lock.wait() }
        }
        close()
        return hasher.finalize()
    }

    /// Stops the thread after the chunk it is hashing, if any (the digest
    /// is then lost). Safe to call more than once.
    func close() {
        lock.withLock {
            closed = true
            lock.broadcast()
        }
    }

    private func handOver() {
        guard let chunk = current else { return }
        current = nil
        lock.withLock {
            queued.append((chunk, filled))
            lock.broadcast()
        }
    }

    private func hashUntilClosed() {
        lock.lock()
        while true {
            if closed { break }
            guard !queued.isEmpty else {
                lock.wait()
                continue
            }
            let (chunk, count) = queued.removeFirst()
            hashing = true
            lock.unlock()
            hasher.update(UnsafeRawBufferPointer(rebasing: chunks[chunk][..<count]))
            lock.lock()
            hashing = false
            free.append(chunk)
            lock.broadcast()
        }
        lock.unlock()
    }
}
