import Reasons
import Synchronization

/// What one request may still read out of decoders, shared by every
/// stream it opens (all the layers of an `image_files` call), and whether
/// the request was cancelled. Decoded streams check it on every chunk, so a
/// decompression bomb stops at the budget and a cancelled request stops
/// within one chunk (at most 256 KiB of output).
public final class ReadBudget: Sendable {
    private let left: Atomic<Int>
    private let cancelled = Atomic<Bool>(false)
    /// The budget it started with, for messages.
    public let limit: Int

    public init(bytes: Int) {
        limit = max(0, bytes)
        left = Atomic(limit)
    }

    /// Marks the request cancelled: the next read of any of its streams throws.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// Takes `count` bytes from the budget, or throws when they are not there.
    public func consume(_ count: Int) throws(ArchiveError) {
        let before = left.subtract(count, ordering: .relaxed).oldValue
        guard before >= count else {
            throw ArchiveError(
                .tooLarge, reason: .decompressionLimit,
                message: "content decodes to more than \(limit) bytes (--max-decompressed-bytes)")
        }
    }

    /// `stream`, counted against this budget.
    public func metering(_ stream: any ByteStream) -> any ByteStream {
        MeteredStream(stream, budget: self)
    }
}

/// A stream whose output is taken from a `ReadBudget`.
final class MeteredStream: ByteStream {
    private let source: any ByteStream
    private let budget: ReadBudget

    init(_ source: any ByteStream, budget: ReadBudget) {
        self.source = source
        self.budget = budget
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        if budget.isCancelled { throw ArchiveError(.cancelled, reason: .cancelled, message: "cancelled") }
        let count = try source.read(into: buffer)
        try budget.consume(count)
        return count
    }
}
