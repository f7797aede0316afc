import Archive
import Memory
import RPCDispatch
import Registry

/// A layer's decompressed bytes, hashed as they are read: the digest
/// containerd and containers/image check against the image config's
/// `diff_ids` before they unpack a layer. A node that already holds a
/// layer under the digest a config names does not unpack the image's own:
/// an image whose config names another layer's digest than its own bytes
/// would run that other layer there, whatever its own archive shows.
///
/// The first `inlineBytes` are hashed on the reading thread; past them a
/// layer is hashed on another core (`OffThreadHasher`) when one is free.
final class LayerDigest: ByteStream {
    /// What is hashed inline before hashing moves to another thread: a
    /// small layer is done before a thread would have started.
    static let inlineBytes = 4 << 20

    private let source: any ByteStream
    private let hasher: DigestHasher
    private let share: MemoryShare?
    private let pool: OffThreadHasher.Pool
    private var hashedInline = 0
    private var offThread: OffThreadHasher?
    /// Whether the bytes past `inlineBytes` went to another thread.
    private(set) var hashedOffThread = false

    /// `share`: what the hashing thread's chunks are taken from; `pool`:
    /// the threads it may be one of.
    init(
        _ source: any ByteStream, algorithm: Digest.Algorithm, share: MemoryShare? = MemoryShare.current,
        pool: OffThreadHasher.Pool = OffThreadHasher.sharedPool
    ) {
        self.source = source
        hasher = DigestHasher(algorithm)
        self.share = share
        self.pool = pool
    }

    deinit { offThread?.close() }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let count = try source.read(into: buffer)
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
        if let offThread {
            offThread.update(bytes)
            return count
        }
        hasher.update(bytes)
        if hashedInline < Self.inlineBytes {
            hashedInline += count
            if hashedInline >= Self.inlineBytes {
                offThread = OffThreadHasher.start(continuing: hasher, share: share, pool: pool)
                hashedOffThread = offThread != nil
            }
        }
        return count
    }

    /// The digest of the whole stream: what is left after the archive's
    /// end is read too, as containerd reads a layer to its end.
    func digestToTheEnd() throws(ArchiveError) -> Digest {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { chunk.deallocate() }
        while try read(into: chunk) > 0 {}
        if let offThread {
            self.offThread = nil
            return offThread.finalize()
        }
        return hasher.finalize()
    }

    /// `digest` as `expected`, or the error that says which layer differs.
    static func check(_ digest: Digest, is expected: Digest, layer: Int, of ref: ImageReference) throws(RPCError) {
        guard digest != expected else { return }
        throw RPCError(
            .integrityFailure, reason: .digestMismatch,
            message:
                "layer \(layer) of \(ref) holds \(digest) uncompressed, where its config's diff_ids say \(expected): runtimes refuse to unpack it, and a node that holds a layer \(expected) runs that one instead"
        )
    }
}
