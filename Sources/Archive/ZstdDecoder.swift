import CZstd

/// Decompresses a zstd stream (one or more frames) with libzstd.
public final class ZstdDecoder: ByteStream {
    private let source: any ByteStream
    private let context: OpaquePointer?
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_DStreamInSize(), alignment: 1)
    private var inBuffer = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
    private var sourceEnded = false
    /// Whether the last frame seen is complete (0 returned by libzstd).
    private var frameComplete = true
    /// Whether any input was seen at all (an empty stream is not zstd).
    private var sawInput = false

    public init(_ source: any ByteStream) {
        self.source = source
        context = ZSTD_createDStream()
        if let context { ZSTD_initDStream(context) }
    }

    deinit {
        if let context { ZSTD_freeDStream(context) }
        input.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard let context else { throw ArchiveError.corrupt("libzstd could not be initialised") }
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
            let result = ZSTD_decompressStream(context, &output, &inBuffer)
            if ZSTD_isError(result) != 0 {
                let name = String(cString: ZSTD_getErrorName(result))
                throw ArchiveError.corrupt("invalid zstd data (\(name))")
            }
            frameComplete = result == 0
        }
        return output.pos
    }
}
