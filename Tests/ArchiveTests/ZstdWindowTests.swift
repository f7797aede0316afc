import Archive
import Memory
import Reasons
import Testing
import TestFixtures

/// A zstd frame names the window its decoder must hold: four bytes of
/// header can ask for 512 MiB. What libzstd allocates for it is taken from
/// the call's memory share, and windows are read as far as Go's decoder
/// reads them.
@Suite struct ZstdWindowTests {
    private func readOnce(_ decoder: ZstdDecoder) throws -> Int {
        var buffer = [UInt8](repeating: 1, count: 1 << 16)
        return try buffer.withUnsafeMutableBytes { try decoder.read(into: $0) }
    }

    @Test func whatTheDecoderAllocatesIsTakenFromTheCallsShareUntilItGoes() throws {
        let budget = MemoryBudget(limit: 1 << 30)
        var decoder: ZstdDecoder? = ZstdDecoder(
            MemoryByteStream(Compressors.zstdFrame(windowLog: 28, zeroBlocks: 4)), share: MemoryShare(of: budget))
        #expect(try readOnce(decoder!) > 0)
        // The 256 MiB window (and the decoder's own tables) are held while it reads.
        #expect(budget.heldBytes > 1 << 28)
        #expect(budget.heldBytes < (1 << 28) + (4 << 20))
        decoder = nil
        #expect(budget.heldBytes == 0)
    }

    @Test func aWindowTheBudgetHasNoRoomForIsARetryableMemoryLimit() throws {
        let budget = MemoryBudget(limit: 64 << 20)
        var decoder: ZstdDecoder? = ZstdDecoder(
            MemoryByteStream(Compressors.zstdFrame(windowLog: 27, zeroBlocks: 1)), share: MemoryShare(of: budget))
        #expect { try readOnce(decoder!) } throws: {
            ($0 as? ArchiveError)?.kind == .tooLarge && ($0 as? ArchiveError)?.reason == .memoryLimit
        }
        decoder = nil
        #expect(budget.heldBytes == 0)
        // The same frame within the budget's room is read.
        let roomy = ZstdDecoder(
            MemoryByteStream(Compressors.zstdFrame(windowLog: 25, zeroBlocks: 1)),
            share: MemoryShare(of: budget))
        #expect(try readOnce(roomy) == 64 << 10)
    }

    @Test func theDecoderTakesTheShareOfTheCallItRunsFor() throws {
        let budget = MemoryBudget(limit: 1 << 30)
        let share = MemoryShare(of: budget)
        let decoder = MemoryShare.$current.withValue(share) {
            ZstdDecoder(MemoryByteStream(Compressors.zstdFrame(windowLog: 26, zeroBlocks: 1)))
        }
        _ = try readOnce(decoder)
        #expect(share.heldBytes > 1 << 26)
    }

    @Test func windowsAreReadAsFarAsGoReadsThem() async throws {
        let logs = Array(10...31)
        let frames = logs.map { Compressors.zstdFrame(windowLog: $0, zeroBlocks: 2) }
        let go = try await GoReaders.decompress(frames)
        for (log, (frame, goRead)) in zip(logs, zip(frames, go)) {
            let decoded = Result { try ZstdDecoder(MemoryByteStream(frame), share: nil).readAll(limit: 1 << 20) }
            let read = (try? decoded.get()).map { $0.count }
            #expect(read == (goRead.error == nil ? goRead.size : nil), "window 2^\(log): Go \(goRead)")
            #expect((read != nil) == (log <= ZstdDecoder.maxWindowLog), "window 2^\(log)")
        }
    }

    @Test func aSingleSegmentFramesContentIsItsWindowAsGoReadsIt() async throws {
        // A single-segment frame's window is its content: 512 MiB are read
        // (as far as the readers' limits: 1 MiB here, 64 MiB in Go), more are
        // refused at the frame's header, by Go's streaming decoder as here.
        let cases: [(size: UInt64, blocks: Int, read: Bool)] = [
            (1 << 20, 8, true), (1 << 29, 520, true), ((1 << 29) + (1 << 27), 520, false), (1 << 31, 520, false),
        ]
        let frames = cases.map { Compressors.zstdFrame(singleSegmentOf: $0.size, zeroBlocks: $0.blocks) }
        let go = try await GoReaders.decompress(frames)
        for (expected, (frame, goRead)) in zip(cases, zip(frames, go)) {
            #expect(
                (goRead.error == nil || goRead.error == "over the limit") == expected.read,
                "\(expected.size): \(goRead)")
            let decoded = Result { () throws(ArchiveError) -> [UInt8] in
                try ZstdDecoder(MemoryByteStream(frame), share: nil).readAll(limit: 1 << 20)
            }
            switch decoded {
            case .success(let bytes): #expect(expected.read && bytes.count == 1 << 20, "\(expected.size)")
            case .failure(let error):
                #expect((error.reason == .archiveTooLarge) == expected.read, "\(expected.size): \(error)")
            }
        }
    }

    @Test func aFrameHoldingOtherThanItsDeclaredSizeIsCorruptHoweverItArrives() async throws {
        // libzstd checks a frame's declared size when it decodes the frame
        // in one pass, or when its last block holds something; read in
        // pieces, a frame ending with an empty block that holds less or more
        // than it declares was read. Go's decoder refuses both.
        let holds = 8 << 17
        let frames = [holds - 1, holds + 1, holds].map {
            Compressors.zstdFrame(singleSegmentOf: UInt64($0), zeroBlocks: 8, emptyLastBlock: true)
        }
        let go = try await GoReaders.decompress(frames)
        for (index, (frame, goRead)) in zip(frames, go).enumerated() {
            let honest = index == 2
            #expect((goRead.error == nil) == honest, "\(goRead)")
            for source in [MemoryByteStream(frame), MemoryByteStream(frame, readsAtMost: 1000)] {
                let decoded = Result { () throws(ArchiveError) -> [UInt8] in
                    try ZstdDecoder(source, share: nil).readAll(limit: 4 << 20)
                }
                switch decoded {
                case .success(let bytes): #expect(honest && bytes.count == holds)
                case .failure(let error): #expect(!honest && error.kind == .corrupt, "\(error)")
                }
            }
        }
    }
}
