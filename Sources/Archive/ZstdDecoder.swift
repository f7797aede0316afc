import CZstd
import Glibc
import Memory

/// Decompresses a zstd stream (one or more frames) with libzstd.
///
/// A frame names the window its decoder must hold, and 4 bytes of header
/// can name 512 MiB: a layer of 7 KB made the server hold 128 MiB that no
/// budget counted, once for every layer decoded at once. Everything
/// libzstd allocates for a stream, its window above all, is taken from the
/// call's memory share before it is allocated (`DecoderMemory`), so a
/// stream the budget has no room for fails with `memory_limit` (retryable)
/// rather than the process.
///
/// Frames are read as Go's decoder (klauspost/compress, which the original
/// builtins and containerd use) reads them, checked here where libzstd's
/// own checks depend on how the input arrives: every frame starts with the
/// zstd magic number or a skippable frame's (libzstd also decodes the
/// formats zstd had before 1.0, which no runtime reads, and told them apart
/// only when five bytes of the frame had come in one read); its window (a
/// single-segment frame's is its content) is at most `maxWindowLog`; and
/// it holds as many bytes as its header says. libzstd checked the last two
/// only when the frame did not arrive whole (a frame it can decode in one
/// pass skips them), so one layer decoded or failed as its reads were cut.
/// libzstd now gets each frame's magic number alone, so it reads every
/// frame block by block, never in one pass, and the block headers are
/// walked as it consumes them (`ZstdBlockWalk`).
public final class ZstdDecoder: ByteStream {
    /// The largest window a frame may name: 2^29 bytes (512 MiB), the
    /// default limit of Go's streaming decoder (`MaxWindowSize`). libzstd's
    /// own default, 2^27, refused layers with larger windows that Go reads.
    public static let maxWindowLog = 29

    private let source: any ByteStream
    private let memory: DecoderMemory
    private let context: OpaquePointer?
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_DStreamInSize(), alignment: 1)
    private var inBuffer = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
    private var sourceEnded = false
    /// Whether the last frame seen is complete (0 returned by libzstd).
    private var frameComplete = true
    /// Whether any input was seen at all (an empty stream is not zstd).
    private var sawInput = false
    /// Whether the next bytes libzstd reads start a frame.
    private var atFrameStart = true
    /// The content size the current frame declares, if it declares one.
    private var declaredContentSize: UInt64?
    /// What the current frame has decoded so far.
    private var frameDecoded: UInt64 = 0
    /// The current frame's blocks, walked as libzstd consumes them.
    private var blocks = ZstdBlockWalk()

    /// A decoder of `source` whose allocations are taken from `share`
    /// (by default the share of the call the current task runs for; none
    /// taken without one).
    public init(_ source: any ByteStream, share: MemoryShare? = MemoryShare.current) {
        self.source = source
        memory = DecoderMemory(share: share)
        let allocator = ZSTD_customMem(
            customAlloc: { opaque, size in
                opaque.flatMap { Unmanaged<DecoderMemory>.fromOpaque($0).takeUnretainedValue().allocate(size) }
            },
            customFree: { opaque, address in
                opaque.map { Unmanaged<DecoderMemory>.fromOpaque($0).takeUnretainedValue().free(address) }
            },
            opaque: Unmanaged.passUnretained(memory).toOpaque())
        var stream = ZSTD_createDStream_advanced(allocator)
        if let created = stream {
            ZSTD_initDStream(created)
            if ZSTD_isError(ZSTD_DCtx_setParameter(created, ZSTD_d_windowLogMax, Int32(Self.maxWindowLog))) != 0 {
                ZSTD_freeDStream(created)
                stream = nil
            }
        }
        context = stream
    }

    deinit {
        // The stream frees its blocks through `memory`, which outlives it.
        if let context { ZSTD_freeDStream(context) }
        input.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard let context else {
            throw memory.refusal ?? ArchiveError.corrupt("libzstd could not be initialised")
        }
        guard buffer.count > 0 else { return 0 }
        var output = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
        while output.pos == 0 {
            if inBuffer.pos == inBuffer.size && !sourceEnded {
                let count = try source.read(into: input)
                if count == 0 {
                    sourceEnded = true
                } else {
                    sawInput = true
                }
                inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: count, pos: 0)
            }
            if inBuffer.pos == inBuffer.size && sourceEnded {
                guard frameComplete && sawInput else { throw ArchiveError.corrupt("zstd stream ends early") }
                return 0
            }
            if atFrameStart, try checkFrameHeader() {
                // libzstd decodes a frame in one pass, with checks of its
                // own, when the whole frame is in one call's input from its
                // first byte; else block by block. Its magic number alone
                // goes first, so every frame is read block by block however
                // the reads were cut (a compressed block of no bytes failed
                // in one pass and passed block by block).
                let size = inBuffer.size
                let start = inBuffer.pos
                inBuffer.size = inBuffer.pos + 4
                let result = ZSTD_decompressStream(context, &output, &inBuffer)
                inBuffer.size = size
                if ZSTD_isError(result) != 0 {
                    if let refusal = memory.refusal { throw refusal }
                    let name = String(cString: ZSTD_getErrorName(result))
                    throw ArchiveError.corrupt("invalid zstd data (\(name))")
                }
                try blocks.walk(consumed(from: start))
            }
            let before = output.pos
            let start = inBuffer.pos
            let result = ZSTD_decompressStream(context, &output, &inBuffer)
            try blocks.walk(consumed(from: start))
            if ZSTD_isError(result) != 0 {
                if let refusal = memory.refusal { throw refusal }
                let name = String(cString: ZSTD_getErrorName(result))
                throw ArchiveError.corrupt("invalid zstd data (\(name))")
            }
            frameDecoded += UInt64(output.pos - before)
            frameComplete = result == 0
            if frameComplete {
                if let declared = declaredContentSize, declared != frameDecoded {
                    throw ArchiveError.corrupt(
                        "invalid zstd data (a frame declares \(declared) bytes and holds \(frameDecoded))")
                }
                atFrameStart = true
            }
        }
        return output.pos
    }

    /// The input libzstd consumed since `start`.
    private func consumed(from start: Int) -> UnsafeRawBufferPointer {
        guard let src = inBuffer.src else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: src.advanced(by: start), count: inBuffer.pos - start)
    }

    /// Reads the header of the frame that starts the input, once it is in
    /// (at most 18 bytes; a header cut short by the end is left to libzstd,
    /// which finds the stream cut short), as Go's decoder reads it: it
    /// refuses a frame that starts with neither the zstd magic number nor a
    /// skippable frame's (0x184D2A50-5F), and a window over `maxWindowLog`,
    /// and notes the content size it declares. True when the input holds
    /// a zstd frame's magic number and more.
    private func checkFrameHeader() throws(ArchiveError) -> Bool {
        try fill(atLeast: 18)
        atFrameStart = false
        declaredContentSize = nil
        frameDecoded = 0
        let available = inBuffer.size - inBuffer.pos
        guard available >= 4, let src = inBuffer.src else { return false }
        let header = UnsafeRawBufferPointer(start: src.advanced(by: inBuffer.pos), count: min(available, 18))
        let magic = header.loadUnaligned(as: UInt32.self).littleEndian
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            if header.count >= 8 {
                // Its length is 32 bits: at most 4 GiB and 8, which Int holds.
                let length = header.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
                blocks.startSkippableFrame(bytes: 8 + Int(length))
            }
            return false
        }
        guard magic == 0xFD2F_B528 else {
            throw ArchiveError.corrupt("invalid zstd data (a frame does not start with the zstd magic number)")
        }
        guard header.count >= 5 else { return false }
        // The frame header descriptor: the content size's field size, the
        // single-segment flag, the dictionary ID's field size. Then the
        // window descriptor (not in a single segment), the dictionary ID,
        // the content size (two bytes count from 256).
        let descriptor = header[4]
        let singleSegment = descriptor & 0x20 != 0
        let dictionaryBytes = [0, 1, 2, 4][Int(descriptor & 3)]
        let sizeFlag = Int(descriptor >> 6)
        let sizeBytes = sizeFlag == 0 ? (singleSegment ? 1 : 0) : 1 << sizeFlag
        let sizeOffset = 5 + (singleSegment ? 0 : 1) + dictionaryBytes
        guard header.count >= sizeOffset + sizeBytes else { return true }
        blocks.startFrame(headerBytes: sizeOffset + sizeBytes, hasChecksum: descriptor & 4 != 0)
        var declared: UInt64?
        if sizeBytes > 0 {
            let size = (0..<sizeBytes).reduce(UInt64(0)) { $0 | UInt64(header[sizeOffset + $1]) << (8 * $1) }
            declared = sizeBytes == 2 ? size + 256 : size
        }
        let window: UInt64
        if singleSegment {
            window = declared ?? 0
        } else {
            let exponent = UInt64(header[5] >> 3)
            let base = UInt64(1) << (10 + exponent)
            window = base + base / 8 * UInt64(header[5] & 7)
        }
        guard window <= 1 << Self.maxWindowLog else {
            throw ArchiveError.corrupt(
                "invalid zstd data (a frame's window of \(window) bytes is more than Go's decoder reads, \(1 << Self.maxWindowLog))"
            )
        }
        declaredContentSize = declared
        return true
    }

    /// Makes `count` bytes of input available at once, when the source
    /// still has them: what is left moves to the buffer's start and more
    /// is read after it.
    private func fill(atLeast count: Int) throws(ArchiveError) {
        var available = inBuffer.size - inBuffer.pos
        guard available < count, !sourceEnded else { return }
        let base = input.baseAddress!
        if available > 0, let src = inBuffer.src {
            base.copyMemory(from: src.advanced(by: inBuffer.pos), byteCount: available)
        }
        while available < count && !sourceEnded {
            let got = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: input[available...]))
            if got == 0 {
                sourceEnded = true
            } else {
                sawInput = true
            }
            available += got
        }
        inBuffer = ZSTD_inBuffer(src: base, size: available, pos: 0)
    }
}

/// What libzstd allocates for one stream: each block taken from a call's
/// memory share before it is allocated, and given back when it is freed.
/// A block is preceded by its size, as libzstd frees by address alone.
final class DecoderMemory {
    private static let header = 16

    private let share: MemoryShare?
    /// Why an allocation was refused, once one was.
    private(set) var refusal: ArchiveError?

    init(share: MemoryShare?) { self.share = share }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let (total, overflow) = size.addingReportingOverflow(Self.header)
        guard !overflow else { return nil }
        do {
            try share?.take(total)
        } catch {
            refusal = ArchiveError(.tooLarge, reason: .memoryLimit, message: error.message)
            return nil
        }
        guard let block = malloc(total) else {
            share?.giveBack(total)
            return nil
        }
        block.storeBytes(of: total, as: Int.self)
        return block + Self.header
    }

    func free(_ address: UnsafeMutableRawPointer?) {
        guard let address else { return }
        let block = address - Self.header
        share?.giveBack(block.load(as: Int.self))
        Glibc.free(block)
    }
}
