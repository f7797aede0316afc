import Archive
import Foundation
import Memory
import Registry
import Testing
import TestFixtures

@testable import OCIMethods

/// A layer's decompressed bytes hashed as they are read, on the reading
/// thread and then on another (`OffThreadHasher`).
@Suite(.serialized) struct LayerDigestTests {
    /// `count` bytes of a seeded generator.
    private func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var words = (0..<(count + 7) / 8).map { _ in generator.next() }
        return words.withUnsafeMutableBytes { Array($0.prefix(count)) }
    }

    /// A pool of one thread, this test's own.
    private let pool = OffThreadHasher.Pool(maxThreads: 1)

    /// Waits (bounded) until none of the pool's threads runs; true then.
    private func threadsEnd() async throws -> Bool {
        for _ in 0..<2000 where pool.threadsRunning > 0 { try await Task.sleep(for: .milliseconds(5)) }
        return pool.threadsRunning == 0
    }

    /// A stream that gives `bytes`, then fails.
    private final class FailingStream: ByteStream {
        private let inner: MemoryByteStream
        init(_ bytes: [UInt8]) { inner = MemoryByteStream(bytes, readsAtMost: 100_000) }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
            let count = try inner.read(into: buffer)
            guard count > 0 else { throw ArchiveError.corrupt("cut") }
            return count
        }
    }

    @Test(arguments: [1, 511, 4096, 100_003, 1 << 20])
    func theDigestIsTheBytesDigestHoweverTheReadsAreCut(readsAtMost: Int) async throws {
        // Past the inline part, across chunks and a partial last chunk.
        let data = bytes(LayerDigest.inlineBytes + 3 * OffThreadHasher.chunkBytes + 12_345, seed: UInt64(readsAtMost))
        let digest = LayerDigest(MemoryByteStream(data, readsAtMost: readsAtMost), algorithm: .sha256, pool: pool)
        #expect(try digest.digestToTheEnd() == Digest.of(data))
        #expect(digest.hashedOffThread)
        #expect(try await threadsEnd())
    }

    @Test func aLayerNoLongerThanTheInlinePartIsHashedInline() throws {
        for count in [0, 1, LayerDigest.inlineBytes - 1] {
            let data = bytes(count, seed: 7)
            let digest = LayerDigest(MemoryByteStream(data), algorithm: .sha512, pool: pool)
            #expect(try digest.digestToTheEnd() == Digest.of(data, algorithm: .sha512))
            #expect(!digest.hashedOffThread)
        }
    }

    @Test func withNoCoreToSpareTheLayerIsHashedInline() throws {
        let data = bytes(LayerDigest.inlineBytes + OffThreadHasher.chunkBytes, seed: 3)
        let digest = LayerDigest(MemoryByteStream(data), algorithm: .sha256, pool: OffThreadHasher.Pool(maxThreads: 0))
        #expect(try digest.digestToTheEnd() == Digest.of(data))
        #expect(!digest.hashedOffThread)
    }

    @Test func noMoreThreadsHashThanAllowed() async throws {
        let data = bytes(LayerDigest.inlineBytes + 1, seed: 4)
        let first = LayerDigest(MemoryByteStream(data), algorithm: .sha256, pool: pool)
        let second = LayerDigest(MemoryByteStream(data), algorithm: .sha256, pool: pool)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 1)
        defer { chunk.deallocate() }
        // Both past the inline part, the first still reading.
        for _ in 0..<5 { _ = try first.read(into: chunk) }
        #expect(first.hashedOffThread)
        #expect(try second.digestToTheEnd() == Digest.of(data))
        #expect(!second.hashedOffThread)
        #expect(try first.digestToTheEnd() == Digest.of(data))
        #expect(try await threadsEnd())
    }

    @Test func theHashingThreadsChunksAreTakenFromTheMemoryShare() async throws {
        let data = bytes(LayerDigest.inlineBytes + 2 * OffThreadHasher.chunkBytes, seed: 5)
        let roomy = MemoryShare(of: MemoryBudget(limit: 64 << 20))
        let digest = LayerDigest(MemoryByteStream(data), algorithm: .sha256, share: roomy, pool: pool)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 1)
        defer { chunk.deallocate() }
        for _ in 0..<5 { _ = try digest.read(into: chunk) }
        #expect(digest.hashedOffThread)
        #expect(roomy.heldBytes == OffThreadHasher.memoryBytes)
        #expect(try digest.digestToTheEnd() == Digest.of(data))
        // Given back before the thread leaves the pool (it lets go of the
        // hasher first: under the address sanitizer, it was seen the other
        // way round).
        #expect(try await threadsEnd())
        #expect(roomy.heldBytes == 0)
        // A share with no room for the chunks: hashed inline, nothing refused.
        let tight = MemoryShare(of: MemoryBudget(limit: OffThreadHasher.memoryBytes - 1))
        let inline = LayerDigest(MemoryByteStream(data), algorithm: .sha256, share: tight, pool: pool)
        #expect(try inline.digestToTheEnd() == Digest.of(data))
        #expect(!inline.hashedOffThread)
        #expect(tight.heldBytes == 0)
    }

    @Test func aStreamThatFailsLeavesNoThreadBehind() async throws {
        let data = bytes(LayerDigest.inlineBytes + 5 * OffThreadHasher.chunkBytes, seed: 6)
        let share = MemoryShare(of: MemoryBudget(limit: 64 << 20))
        do {
            let digest = LayerDigest(FailingStream(data), algorithm: .sha256, share: share, pool: pool)
            #expect(throws: ArchiveError.self) { try digest.digestToTheEnd() }
            #expect(digest.hashedOffThread)
        }
        #expect(try await threadsEnd())
        #expect(share.heldBytes == 0)
    }
}
