import Glibc

/// A loopback port that takes connections (the kernel completes them) but
/// never reads or answers: a registry that stalls every request.
public final class SilentListener: @unchecked Sendable {
    public let port: Int
    private let fd: Int32

    public init() throws {
        (fd, port) = try LoopbackSocket.bind(listening: true)
    }

    deinit { close(fd) }

    /// `127.0.0.1:<port>`.
    public var host: String { "127.0.0.1:\(port)" }
}
