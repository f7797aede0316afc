import Reasons
import Glibc
import Memory

/// A source of bytes read front to back in chunks: a file, or a decoder
/// over another stream. Readers pull, so memory stays at one chunk.
public protocol ByteStream: AnyObject {
    /// Fills up to `buffer.count` bytes; returns how many, 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int
}

extension ByteStream {
    /// Everything left in the stream, refusing more than `limit` bytes.
    /// `mayHold` is asked before the result grows by each chunk, and what
    /// it returns is thrown (a memory budget that has not got the bytes).
    public func readAll(
        limit: Int, mayHold: (Int) -> ArchiveError? = { _ in nil }
    ) throws(ArchiveError) -> [UInt8] {
        var result: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            let count = try read(into: chunk)
            if count == 0 { return result }
            guard result.count + count <= limit else {
                throw ArchiveError(
                    .tooLarge, reason: .archiveTooLarge,
                    message: "content is larger than \(limit) bytes")
            }
            if let refusal = mayHold(count) { throw refusal }
            result.append(contentsOf: chunk[0..<count])
        }
    }
}

/// A file read with plain `read(2)` calls.
public final class FileByteStream: ByteStream {
    private let fd: Int32

    /// Opens `path` for reading.
    public init(path: String) throws(ArchiveError) {
        fd = DescriptorReserve.admitted(open(path, O_RDONLY | O_CLOEXEC))
        guard fd >= 0 else {
            if DescriptorReserve.isExhaustion(errno) { throw .descriptorLimit }
            throw ArchiveError(.io, reason: .ioError, message: "cannot open \(path)")
        }
    }

    deinit { close(fd) }

    /// The first `count` bytes of the file, without moving the read position.
    public func peek(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
        return Array(bytes.prefix(max(0, got)))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR { throw ArchiveError(.io, reason: .ioError, message: "read failed (errno \(errno))") }
        }
    }
}

/// Bytes already in memory, as a stream.
public final class MemoryByteStream: ByteStream {
    private let bytes: [UInt8]
    private let readsAtMost: Int
    private var offset = 0

    /// A stream of `bytes`, each read giving at most `readsAtMost` of them
    /// (a file or a socket gives what it has, not what was asked: readers
    /// are tested and fuzzed on streams cut anywhere).
    public init(_ bytes: [UInt8], readsAtMost: Int = .max) {
        self.bytes = bytes
        self.readsAtMost = max(1, readsAtMost)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let count = min(buffer.count, bytes.count - offset, readsAtMost)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
        }
        offset += count
        return count
    }
}
