import CZlib

/// Inflates a gzip stream (concatenated members too) with zlib.
///
/// A member's header is read as Go's `compress/gzip` reads it (the
/// original builtins' reader, and containerd's): Go ignores the three
/// flag bits the format reserves, where zlib refuses the member, so they
/// are cleared before zlib reads the header. A header that also carries its
/// own CRC, which covers those bits, is left to zlib. Go reads a member's
/// name and comment into 512 bytes, their terminating zero included, and
/// refuses a longer one; so does this reader (zlib read any length).
public final class GzipDecoder: ByteStream {
    /// The most a member's name or comment may take, its zero included.
    private static let maxHeaderText = 512

    private let source: any ByteStream
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    /// What zlib reads of a member's header: its name and comment go to
    /// buffers of `maxHeaderText` bytes.
    private let header = UnsafeMutablePointer<gz_header>.allocate(capacity: 1)
    private let name = UnsafeMutablePointer<Bytef>.allocate(capacity: maxHeaderText)
    private let comment = UnsafeMutablePointer<Bytef>.allocate(capacity: maxHeaderText)
    /// Whether the current member's header has been read and checked.
    private var headerChecked = false
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
    private var sourceEnded = false
    private var finished = false
    private var initialized = false
    /// Whether the next bytes zlib reads start a member's header.
    private var atMemberStart = true

    public init(_ source: any ByteStream) {
        self.source = source
        stream.initialize(to: z_stream())
        // 15 + 16: a gzip wrapper is required.
        initialized = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK
        if initialized { watchHeader() }
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deallocate()
        header.deallocate()
        name.deallocate()
        comment.deallocate()
        input.deallocate()
    }

    /// Has zlib keep the next member's header, its name and comment in
    /// buffers of `maxHeaderText` bytes (zlib writes no more than that, and
    /// no zero when the text is longer).
    private func watchHeader() {
        header.initialize(to: gz_header())
        header.pointee.name = name
        header.pointee.name_max = uInt(Self.maxHeaderText)
        header.pointee.comment = comment
        header.pointee.comm_max = uInt(Self.maxHeaderText)
        inflateGetHeader(stream, header)
        headerChecked = false
    }

    /// Refuses a member whose name or comment Go would not read: one with
    /// no zero in its first `maxHeaderText` bytes.
    private func checkHeaderText() throws(ArchiveError) {
        headerChecked = true
        for (what, text) in [("name", header.pointee.name), ("comment", header.pointee.comment)] {
            guard let text else { continue }
            if !(0..<Self.maxHeaderText).contains(where: { text[$0] == 0 }) {
                throw ArchiveError.corrupt(
                    "a gzip member's \(what) is \(Self.maxHeaderText) bytes or more, which Go's reader refuses")
            }
        }
    }

    private func refill() throws(ArchiveError) {
        guard stream.pointee.avail_in == 0, !sourceEnded else { return }
        let count = try source.read(into: input)
        if count == 0 { sourceEnded = true }
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(count)
    }

    /// Makes `count` bytes of input available at once, when the source
    /// still has them: what is left moves to the buffer's start and more
    /// is read after it.
    private func fill(atLeast count: Int) throws(ArchiveError) {
        var available = Int(stream.pointee.avail_in)
        guard available < count, !sourceEnded else { return }
        let base = input.baseAddress!
        if available > 0, let next = stream.pointee.next_in { base.copyMemory(from: next, byteCount: available) }
        while available < count && !sourceEnded {
            let got = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: input[available...]))
            if got == 0 { sourceEnded = true }
            available += got
        }
        stream.pointee.next_in = base.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(available)
    }

    /// Clears the reserved flag bits of the member header that starts the
    /// input, as Go reads past them, unless the header's own CRC covers them.
    private func readHeaderAsGo() throws(ArchiveError) {
        atMemberStart = false
        try fill(atLeast: 4)
        guard stream.pointee.avail_in >= 4, let next = stream.pointee.next_in else { return }
        let flags = next[3]
        let reserved: UInt8 = 0xE0
        let headerCRC: UInt8 = 0x02
        if flags & reserved != 0 && flags & headerCRC == 0 { next[3] = flags & ~reserved }
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
            if atMemberStart { try readHeaderAsGo() }
            let status = inflate(stream, Z_NO_FLUSH)
            if !headerChecked && header.pointee.done == 1 { try checkHeaderText() }
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
                watchHeader()
                atMemberStart = true
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
