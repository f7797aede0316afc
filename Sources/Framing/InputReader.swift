import Glibc
import Locking

/// Reads stdin on a dedicated OS thread and hands complete messages to a
/// callback, on that thread, in input order.
///
/// The dedicated thread matters: the cooperative pool that runs Swift tasks
/// has only as many threads as cores, and a blocking `read(2)` there would
/// take one away from request handling.
public final class InputReader: @unchecked Sendable {
    private let fd: Int32
    private let maxMessageBytes: Int
    private let chunkSize: Int

    public init(fd: Int32, maxMessageBytes: Int, chunkSize: Int = 1 << 16) {
        self.fd = fd
        self.maxMessageBytes = maxMessageBytes
        self.chunkSize = chunkSize
    }

    /// Starts the reading thread, or returns false when no thread could be
    /// started (`threadShortageExplanation`) and nothing will be read.
    /// - Parameters:
    ///   - beforeRead: called before each `read(2)`; may block (backpressure)
    ///     and returns false to stop reading.
    ///   - onEvent: called for each framing event.
    ///   - onEnd: called once at end of input (or a read error), after the
    ///     last event.
    @discardableResult
    public func start(
        beforeRead: @escaping @Sendable () -> Bool,
        onEvent: @escaping @Sendable (FrameEvent) -> Void,
        onEnd: @escaping @Sendable () -> Void
    ) -> Bool {
        let fd = self.fd
        let chunkSize = self.chunkSize
        let maxMessageBytes = self.maxMessageBytes
        return startThreadIfPossible {
            var framer = MessageFramer(maxMessageBytes: maxMessageBytes)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
            defer { buffer.deallocate() }
            while beforeRead() {
                let n = Glibc.read(fd, buffer.baseAddress, chunkSize)
                if n < 0 && errno == EINTR { continue }
                if n < 0 && wouldBlock(errno) {
                    waitForDescriptor(fd, events: Int16(POLLIN))
                    continue
                }
                if n <= 0 { break }
                framer.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), onEvent)
            }
            framer.finish(onEvent)
            onEnd()
        }
    }
}
