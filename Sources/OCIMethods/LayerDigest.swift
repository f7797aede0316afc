import Archive
import RPCDispatch
import Registry

/// A layer's decompressed bytes, hashed as they are read: the digest
/// containerd and containers/image check against the image config's
/// `diff_ids` before they unpack a layer. A node that already holds a
/// layer under the digest a config names does not unpack the image's own:
/// an image whose config names another layer's digest than its own bytes
/// would run that other layer there, whatever its own archive shows.
final class LayerDigest: ByteStream {
    private let source: any ByteStream
    private let hasher: DigestHasher

    init(_ source: any ByteStream, algorithm: Digest.Algorithm) {
        self.source = source
        hasher = DigestHasher(algorithm)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let count = try source.read(into: buffer)
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        return count
    }

    /// The digest of the whole stream: what is left after the archive's
    /// end is read too, as containerd reads a layer to its end.
    func digestToTheEnd() throws(ArchiveError) -> Digest {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { chunk.deallocate() }
        while try read(into: chunk) > 0 {}
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
