/// The compressions a layer or blob may carry, told apart by magic bytes
/// (media types lie often enough that the bytes are the better witness).
public enum Compression: Sendable, Equatable {
    case none, gzip, zstd

    /// Whose reading of a stream's first bytes tells its compression.
    public enum Reader: Sendable, Equatable {
        /// The original builtins' (go-containerregistry), for a blob read
        /// whole: gzip by its two magic bytes, zstd by a frame's magic,
        /// anything else the bytes as they are.
        case original
        /// The runtimes' that unpack a layer (containerd, Docker, and
        /// containers/storage under CRI-O and Podman), for an archive read
        /// as its files (`detectLayer`).
        case runtimes
        /// None: a document the runtimes parse as it is (an image's config).
        case asIs
    }

    /// The compression whose magic number `prefix` starts with, as the
    /// original builtins tell it.
    public static func detect<Bytes: Collection<UInt8>>(_ prefix: Bytes) -> Compression {
        let head = Array(prefix.prefix(4))
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return .gzip }
        if head == zstdMagic { return .zstd }
        return .none
    }

    /// The compression the runtimes unpack a layer starting with `prefix`
    /// (its first 8 bytes or all of it) from. They take gzip by three bytes,
    /// its magic and deflate's number (a stream whose third byte is another
    /// is unpacked as it is, where a reader by two bytes fails), and zstd
    /// by a frame's magic. Some of them decompress what others unpack as it
    /// is: a stream that starts with a zstd skippable frame (containerd
    /// and Docker skip it and decompress what follows), or is xz or bzip2
    /// (Docker and containers/storage). One layer would so be different
    /// files to each, and a policy could pass the ones a cluster does not
    /// run: it is `corrupt_archive`.
    public static func detectLayer<Bytes: Collection<UInt8>>(_ prefix: Bytes) throws(ArchiveError) -> Compression {
        let head = Array(prefix.prefix(8))
        if head.starts(with: [0x1F, 0x8B, 0x08]) { return .gzip }
        if head.starts(with: zstdMagic) { return .zstd }
        // containerd looks for a skippable frame only in 8 bytes or more.
        if head.count >= 8, head[1] == 0x2A, head[2] == 0x4D, head[3] == 0x18, head[0] & 0xF0 == 0x50 {
            throw ambiguous("a zstd skippable frame, which containerd and Docker decompress as zstd")
        }
        if head.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            throw ambiguous("xz, which Docker and containers/storage decompress")
        }
        if head.starts(with: [0x42, 0x5A, 0x68]) {
            throw ambiguous("bzip2 (\"BZh\"), which Docker and containers/storage decompress")
        }
        return .none
    }

    private static let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    private static func ambiguous(_ what: String) -> ArchiveError {
        .corrupt(
            "the layer starts as \(what) and the other runtimes unpack as it is: each would unpack other files")
    }

    /// `stream` decoded according to this compression.
    public func decoding(_ stream: any ByteStream) -> any ByteStream {
        switch self {
        case .none: return stream
        case .gzip: return GzipDecoder(stream)
        case .zstd: return ZstdDecoder(stream)
        }
    }

    /// Opens `path` and decodes it according to its first bytes, as
    /// `reader` tells its compression, every decoded byte taken from `budget`.
    public static func openDecoded(path: String, budget: ReadBudget, as reader: Reader) throws(ArchiveError)
        -> any ByteStream
    {
        let file = try FileByteStream(path: path)
        return try openDecoded(file, prefix: file.peek(8), budget: budget, as: reader)
    }

    /// `stream` decoded according to `prefix`, its first bytes (at most 8,
    /// fewer only if it is shorter), as `reader` tells its compression,
    /// every decoded byte taken from `budget`.
    public static func openDecoded(
        _ stream: any ByteStream, prefix: [UInt8], budget: ReadBudget, as reader: Reader
    ) throws(ArchiveError) -> any ByteStream {
        let compression: Compression
        switch reader {
        case .original: compression = detect(prefix)
        case .runtimes: compression = try detectLayer(prefix)
        case .asIs: compression = .none
        }
        return budget.metering(compression.decoding(stream))
    }

    /// Decodes `bytes` according to their magic bytes, up to `limit` bytes out.
    public static func decode(_ bytes: [UInt8], limit: Int) throws(ArchiveError) -> [UInt8] {
        let compression = detect(bytes)
        if compression == .none { return bytes }
        return try compression.decoding(MemoryByteStream(bytes)).readAll(limit: limit)
    }
}
