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
/// builtins and containerd use) reads them: every frame starts with the
/// zstd magic number or a skippable frame's (libzstd also decodes the
/// formats zstd had before 1.0, which no runtime reads, and told them apart
/// only when five bytes of the frame had come in one read), and its window
/// (a single-segment frame's is its content) is at most `maxWindowLog`.
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
            if atFrameStart { try checkFrameMagic() }
            let result = ZSTD_decompressStream(context, &output, &inBuffer)
            if ZSTD_isError(result) != 0 {
                if let refusal = memory.refusal { throw refusal }
                let name = String(cString: ZSTD_getErrorName(result))
                throw ArchiveError.corrupt("invalid zstd data (\(name))")
            }
            frameComplete = result == 0
            if frameComplete { atFrameStart = true }
        }
        return output.pos
    }

    /// Refuses a frame that starts with neither the zstd magic number nor
    /// a skippable frame's (0x184D2A50-5F), once four bytes are in: what Go's
    /// decoder calls a magic number mismatch. Fewer bytes before the end are
    /// left to libzstd, which finds the stream cut short.
    private func checkFrameMagic() throws(ArchiveError) {
        try fill(atLeast: 4)
        atFrameStart = false
        guard inBuffer.size - inBuffer.pos >= 4, let src = inBuffer.src else { return }
        let magic = src.advanced(by: inBuffer.pos).loadUnaligned(as: UInt32.self).littleEndian
        guard magic == 0xFD2F_B528 || magic & 0xFFFF_FFF0 == 0x184D_2A50 else {
            throw ArchiveError.corrupt("invalid zstd data (a frame does not start with the zstd magic number)")
        }
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
