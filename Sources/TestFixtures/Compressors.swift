import CZlib
import CZstd

/// gzip and zstd compression for fixtures (the code under test only
/// decompresses).
public enum Compressors {
    /// A gzip member of `bytes`.
    public static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        // zlib keeps a pointer back to the stream: it must not move.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // 15 + 16: write a gzip wrapper.
        deflateInit2_(
            stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        defer { deflateEnd(stream) }
        var input = bytes
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(bytes.count))) + 64)
        let written = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.pointee.next_in = inBuffer.baseAddress
                stream.pointee.avail_in = uInt(inBuffer.count)
                stream.pointee.next_out = outBuffer.baseAddress
                stream.pointee.avail_out = uInt(outBuffer.count)
                deflate(stream, Z_FINISH)
                return outBuffer.count - Int(stream.pointee.avail_out)
            }
        }
        return Array(output.prefix(written))
    }

    /// One zstd frame that declares a window of 2^`windowLog` bytes (its
    /// decoder must hold that much) and no content size, holding `zeroBlocks`
    /// blocks of zeros as large as the window allows (128 KiB at most), each
    /// written as a run: four bytes a block, however large the window.
    public static func zstdFrame(windowLog: Int, zeroBlocks: Int) -> [UInt8] {
        var frame = zstdFrameHeader(windowLog: windowLog)
        let blockSize = min(128 << 10, 1 << windowLog)
        for index in 0..<zeroBlocks {
            // Type 1: a run of the one byte that follows.
            frame += zstdBlockHeader(size: blockSize, type: 1, last: index == zeroBlocks - 1) + [0]
        }
        return frame
    }

    /// One single-segment zstd frame (its window is its content) that
    /// declares `contentSize` bytes, holding `zeroBlocks` runs of 128 KiB of
    /// zeros (fewer than it declares, for a reader that stops before), and
    /// when `emptyLastBlock`, an empty block after them, which ends it.
    public static func zstdFrame(
        singleSegmentOf contentSize: UInt64, zeroBlocks: Int, emptyLastBlock: Bool = false
    ) -> [UInt8] {
        // Magic; a descriptor with an 8-byte content size and the single
        // segment flag; the size.
        var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xC0 | 0x20]
        frame += (0..<8).map { UInt8(truncatingIfNeeded: contentSize >> (8 * $0)) }
        for index in 0..<zeroBlocks {
            let last = !emptyLastBlock && index == zeroBlocks - 1
            frame += zstdBlockHeader(size: 128 << 10, type: 1, last: last) + [0]
        }
        if emptyLastBlock { frame += zstdBlockHeader(size: 0, type: 0, last: true) }
        return frame
    }

    /// One zstd frame that declares a window of 2^`windowLog` bytes and
    /// no content size, holding `content` as it is (raw blocks).
    public static func zstdFrame(windowLog: Int, content: [UInt8]) -> [UInt8] {
        var frame = zstdFrameHeader(windowLog: windowLog)
        let blockSize = min(128 << 10, 1 << windowLog)
        var start = 0
        repeat {
            let end = min(content.count, start + blockSize)
            frame += zstdBlockHeader(size: end - start, type: 0, last: end == content.count) + content[start..<end]
            start = end
        } while start < content.count
        return frame
    }

    /// Magic; a frame header descriptor without content size, checksum or
    /// dictionary, not single-segment; the window descriptor, its exponent
    /// being the log less 10 (no mantissa).
    private static func zstdFrameHeader(windowLog: Int) -> [UInt8] {
        precondition((10...41).contains(windowLog))
        return [0x28, 0xB5, 0x2F, 0xFD, 0x00, UInt8((windowLog - 10) << 3)]
    }

    /// A block header: whether it is the frame's last, its type, its size.
    private static func zstdBlockHeader(size: Int, type: Int, last: Bool) -> [UInt8] {
        let header = size << 3 | type << 1 | (last ? 1 : 0)
        return [UInt8(header & 0xFF), UInt8(header >> 8 & 0xFF), UInt8(header >> 16 & 0xFF)]
    }

    /// One zstd frame of `bytes`.
    public static func zstd(_ bytes: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        let written = output.withUnsafeMutableBytes { out in
            bytes.withUnsafeBytes { ZSTD_compress(out.baseAddress, out.count, $0.baseAddress, $0.count, 3) }
        }
        return Array(output.prefix(written))
    }
}
