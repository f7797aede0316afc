import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A TCP socket bound to a free port on 127.0.0.1. Sockets are closed on
/// exec: a registry or server a test starts must not hold the test's
/// listeners and connections open (nor answer from them).
enum LoopbackSocket {
    /// The socket and its port; listening (backlog 128) when asked. On
    /// Linux every address of 127.0.0.0/8 is loopback: another one than
    /// 127.0.0.1 stands for another host.
    static func bind(listening: Bool, address host: String = "127.0.0.1") throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestRegistryError("socket failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, length) == 0 && (!listening || listen(fd, 128) == 0)
                    && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            close(fd)
            throw TestRegistryError("cannot bind a loopback socket")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}

extension LoopbackSocket {
    /// A socket connected to 127.0.0.1:`port`, or nil when nothing listens.
    static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(fd)
            return nil
        }
        return fd
    }
}

/// Tests write to pipes and sockets whose other end may have closed: that
/// must be an error (EPIPE), not a signal that kills the test process.
public func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}
