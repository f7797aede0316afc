/// The compressions a layer or blob may carry, told apart by magic bytes
/// (media types lie often enough that the bytes are the better witness).
public enum Compression: Sendable, Equatable {
    case none, gzip, zstd

    /// The compression whose magic number `prefix` starts with.
    public static func detect<Bytes: Collection<UInt8>>(_ prefix: Bytes) -> Compression {
        let head = Array(prefix.prefix(4))
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return .gzip }
        if head == [0x28, 0xB5, 0x2F, 0xFD] { return .zstd }
        return .none
    }

    /// `stream` decoded according to this compression.
    public func decoding(_ stream: any ByteStream) -> any ByteStream {
        switch self {
        case .none: return stream
        case .gzip: return GzipDecoder(stream)
        case .zstd: return ZstdDecoder(stream)
        }
    }

    /// Opens `path` and decodes it according to its magic bytes, every
    /// decoded byte taken from `budget`.
    public static func openDecoded(path: String, budget: ReadBudget) throws(ArchiveError) -> any ByteStream {
        let file = try FileByteStream(path: path)
        return budget.metering(detect(file.peek(4)).decoding(file))
    }

    /// Decodes `bytes` according to their magic bytes, up to `limit` bytes out.
    public static func decode(_ bytes: [UInt8], limit: Int) throws(ArchiveError) -> [UInt8] {
        let compression = detect(bytes)
        if compression == .none { return bytes }
        return try compression.decoding(MemoryByteStream(bytes)).readAll(limit: limit)
    }
}
