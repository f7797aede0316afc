/// Walks a zstd frame's blocks as libzstd consumes its bytes, to hold each
/// block header to what Go's decoder (klauspost/compress) accepts where
/// libzstd reads more: a compressed block of no bytes is an empty block to
/// libzstd's streaming decoder and `ErrBlockTooSmall` to Go's (libzstd's
/// one-pass decoder refuses it too). Only lengths are read here; the
/// blocks' contents are libzstd's to decode.
struct ZstdBlockWalk {
    private enum Stage {
        /// Bytes of the frame header left (magic number included).
        case header(left: Int)
        /// Bytes of a block header read so far, and their value.
        case blockHeader(read: Int, value: UInt32)
        /// Bytes of a block's content left.
        case content(left: Int, last: Bool)
        /// Bytes of the frame's checksum, or of a skippable frame, left.
        case trailer(left: Int)
        /// Between frames, or before the first.
        case between
    }

    private var stage = Stage.between
    private var hasChecksum = false

    /// A zstd frame starts: its header is `headerBytes` long.
    mutating func startFrame(headerBytes: Int, hasChecksum: Bool) {
        stage = .header(left: headerBytes)
        self.hasChecksum = hasChecksum
    }

    /// A skippable frame of `bytes` in all starts.
    mutating func startSkippableFrame(bytes: Int) {
        stage = .trailer(left: bytes)
    }

    /// Walks the bytes libzstd consumed next.
    mutating func walk(_ bytes: UnsafeRawBufferPointer) throws(ArchiveError) {
        var at = 0
        while at < bytes.count {
            let left = bytes.count - at
            switch stage {
            case .between:
                return
            case .header(let header):
                let taken = min(header, left)
                at += taken
                stage = header == taken ? .blockHeader(read: 0, value: 0) : .header(left: header - taken)
            case .blockHeader(var read, var value):
                while read < 3 && at < bytes.count {
                    value |= UInt32(bytes[at]) << (8 * read)
                    read += 1
                    at += 1
                }
                guard read == 3 else {
                    stage = .blockHeader(read: read, value: value)
                    return
                }
                let last = value & 1 != 0
                let type = (value >> 1) & 3
                let size = Int(value >> 3)
                if type == 2 && size == 0 {
                    throw ArchiveError.corrupt(
                        "invalid zstd data (a compressed block of no bytes, which Go's decoder refuses)")
                }
                // An RLE block holds one byte; a reserved type is libzstd's to refuse.
                stage = .content(left: type == 1 ? 1 : size, last: last)
                if case .content(0, _) = stage { finishBlock(last: last) }
            case .content(let content, let last):
                let taken = min(content, left)
                at += taken
                if taken == content {
                    finishBlock(last: last)
                } else {
                    stage = .content(left: content - taken, last: last)
                }
            case .trailer(let trailer):
                let taken = min(trailer, left)
                at += taken
                stage = trailer == taken ? .between : .trailer(left: trailer - taken)
            }
        }
    }

    private mutating func finishBlock(last: Bool) {
        if !last {
            stage = .blockHeader(read: 0, value: 0)
        } else {
            stage = hasChecksum ? .trailer(left: 4) : .between
        }
    }
}
