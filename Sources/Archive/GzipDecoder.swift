import CZlib

/// Inflates a gzip stream (concatenated members too) with zlib.
public final class GzipDecoder: ByteStream {
    private let source: any ByteStream
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
    private var sourceEnded = false
    private var finished = false
    private var initialized = false

    public init(_ source: any ByteStream) {
        self.source = source
        stream.initialize(to: z_stream())
        // 15 + 16: a gzip wrapper is required.
        initialized = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deallocate()
        input.deallocate()
    }

    private func refill() throws(ArchiveError) {
        guard stream.pointee.avail_in == 0, !sourceEnded else { return }
        let count = try source.read(into: input)
        if count == 0 { sourceEnded = true }
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(count)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard initialized else { throw ArchiveError.corrupt("zlib could not be initialised") }
        guard !finished, buffer.count > 0 else { return 0 }
        stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(buffer.count)
        while stream.pointee.avail_out == uInt(buffer.count) {
            try refill()
            if stream.pointee.avail_in == 0 && sourceEnded {
                throw ArchiveError.corrupt("gzip stream ends early")
            }
            let status = inflate(stream, Z_NO_FLUSH)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                // Another member may follow (concatenated gzip).
                try refill()
                if stream.pointee.avail_in == 0 && sourceEnded {
                    finished = true
                    return buffer.count - Int(stream.pointee.avail_out)
                }
                inflateReset(stream)
                if stream.pointee.avail_out != uInt(buffer.count) {
                    return buffer.count - Int(stream.pointee.avail_out)
                }
            case Z_BUF_ERROR:
                continue
            default:
                throw ArchiveError.corrupt("invalid gzip data (zlib status \(status))")
            }
        }
        return buffer.count - Int(stream.pointee.avail_out)
    }
}
