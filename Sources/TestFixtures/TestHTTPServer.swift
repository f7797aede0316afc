import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 request as the test server read it.
public struct TestHTTPRequest: Sendable {
    public let method: String
    /// Path and query, as sent.
    public let target: String
    /// Header values by lower-cased name.
    public let headers: [String: String]
    public let body: [UInt8]

    public var path: String { String(target.split(separator: "?", maxSplits: 1).first ?? "") }
    public var query: [String: String] {
        guard let q = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        return Self.values(q)
    }

    /// The body's `application/x-www-form-urlencoded` values.
    public var form: [String: String] { Self.values(Substring(String(decoding: body, as: UTF8.self))) }

    /// Read as Go's `url.ParseQuery` reads a query or a form, as token
    /// servers do: `+` is a space, then `%XX` escapes are decoded.
    private static func values(_ q: Substring) -> [String: String] {
        var result: [String: String] = [:]
        func decoded(_ text: Substring) -> String {
            let spaced = String(text).replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            let key = kv.first.map(decoded) ?? ""
            let value = kv.count > 1 ? decoded(kv[1]) : ""
            result[key] = value
        }
        return result
    }
}

/// What the test server does with a request.
public enum TestHTTPReply: Sendable {
    /// A whole response.
    case response(status: Int, headers: [(String, String)], body: [UInt8])
    /// Headers that announce `declaredLength` bytes, then `body`, then the
    /// connection closes (a truncated response when the body is shorter).
    case truncated(status: Int, headers: [(String, String)], body: [UInt8], declaredLength: Int)
    /// The connection is closed without an answer (a reset).
    case reset
    /// Headers announcing `body`, then its bytes `step` at a time,
    /// `interval` seconds apart (a registry that holds a request open, or,
    /// in larger steps, one slow but steady).
    case drip(status: Int, headers: [(String, String)], body: [UInt8], interval: Double, step: Int = 1)
    /// Headers announcing `body`, its first `after` bytes, a pause of
    /// `seconds`, then the rest (a registry whose blob a client starts to
    /// read before it is whole).
    case paused(status: Int, headers: [(String, String)], body: [UInt8], after: Int, seconds: Double)
    /// Headers without a length, then zeros until the client gives up or
    /// `limit` bytes are sent (a registry that streams without end).
    case endless(status: Int, headers: [(String, String)], limit: Int)
}

/// A small threaded HTTP/1.1 server on loopback for tests: token issuers,
/// fault-injecting proxies. Keep-alive connections are served in order.
public final class TestHTTPServer: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (TestHTTPRequest) -> TestHTTPReply
    private let lock = NSLock()
    private var stopped = false
    private var connections: Set<Int32> = []
    private var acceptedCount = 0

    /// Connections accepted so far.
    public var connectionsAccepted: Int { lock.withLock { acceptedCount } }
    private var dripped: [Int] = []
    /// The bytes each finished drip wrote before it ended (its client
    /// left, or its body was all written), counted on the server's own
    /// thread: when a client gave up, however late a test looks.
    public var drips: [Int] { lock.withLock { dripped } }

    /// The loopback address it listens on.
    public let address: String
    public var baseURL: String { "http://\(address):\(port)" }

    /// A server on `address`, one of 127.0.0.0/8.
    public init(
        address: String = "127.0.0.1", handler: @escaping @Sendable (TestHTTPRequest) -> TestHTTPReply
    ) throws {
        ignoreBrokenPipes()
        self.handler = handler
        self.address = address
        (listener, port) = try LoopbackSocket.bind(listening: true, address: address)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit { stop() }

    /// Stops accepting and closes every open connection.
    public func stop() {
        // Under the lock: a connection's fd is closed (and its number free
        // for reuse) only under it too, so no other socket is shut down.
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                close(listener)
                return
            }
            // Not inherited by the processes tests start (see `LoopbackSocket`).
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let accepted = lock.withLock { () -> Bool in
                guard !stopped else { return false }
                acceptedCount += 1
                connections.insert(fd)
                return true
            }
            guard accepted else {
                close(fd)
                continue
            }
            Thread.detachNewThread { [self] in
                serve(fd)
                lock.withLock {
                    _ = connections.remove(fd)
                    close(fd)
                }
            }
        }
    }

    private func serve(_ fd: Int32) {
        let reader = SocketReader(fd: fd)
        while let request = reader.readRequest() {
            switch handler(request) {
            case .reset:
                var linger = linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
                return
            case .response(let status, let headers, let body):
                // A HEAD answer keeps the length the headers announce.
                let isHead = request.method == "HEAD"
                let announced = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
                let head = Self.head(status, headers, length: isHead ? announced : body.count, close: false)
                guard SocketReader.writeAll(fd, head + (isHead ? [] : body)) else { return }
            case .truncated(let status, let headers, let body, let declared):
                _ = SocketReader.writeAll(fd, Self.head(status, headers, length: declared, close: true) + body)
                return
            case .drip(let status, let headers, let body, let interval, let step):
                guard SocketReader.writeAll(fd, Self.head(status, headers, length: body.count, close: true)) else {
                    return
                }
                var written = 0
                defer { lock.withLock { dripped.append(written) } }
                while written < body.count {
                    Thread.sleep(forTimeInterval: interval)
                    let part = Array(body[written..<min(body.count, written + max(1, step))])
                    guard !lock.withLock({ stopped }), SocketReader.writeAll(fd, part) else { return }
                    written += part.count
                }
                return
            case .paused(let status, let headers, let body, let after, let seconds):
                let cut = min(after, body.count)
                guard
                    SocketReader.writeAll(
                        fd, Self.head(status, headers, length: body.count, close: true) + body[..<cut])
                else { return }
                Thread.sleep(forTimeInterval: seconds)
                _ = SocketReader.writeAll(fd, Array(body[cut...]))
                return
            case .endless(let status, let headers, let limit):
                var text = "HTTP/1.1 \(status) OK\r\n"
                for (name, value) in headers { text += "\(name): \(value)\r\n" }
                guard SocketReader.writeAll(fd, Array((text + "Connection: close\r\n\r\n").utf8)) else { return }
                let chunk = [UInt8](repeating: 0, count: 256 << 10)
                var sent = 0
                while sent < limit, !lock.withLock({ stopped }), SocketReader.writeAll(fd, chunk) {
                    sent += chunk.count
                }
                return
            }
        }
    }

    /// Status line and headers; `Content-Length` is always `length`.
    private static func head(_ status: Int, _ headers: [(String, String)], length: Int, close: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Status")\r\n"
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower == "content-length" || lower == "connection" || lower == "transfer-encoding" { continue }
            text += "\(name): \(value)\r\n"
        }
        text += "Content-Length: \(length)\r\n"
        if close { text += "Connection: close\r\n" }
        return Array((text + "\r\n").utf8)
    }
}

/// Reads HTTP/1.1 messages from a socket (requests for the server,
/// responses for the proxy's upstream side).
final class SocketReader {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
    }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        buffer += chunk[0..<n]
        return true
    }

    /// The head (start line and headers) of the next message.
    func readHead() -> (String, [String: String])? {
        while true {
            // Not HTTP (a TLS handshake, as a client trying https first
            // sends): nothing to wait for; closing lets it fall back at once.
            if let first = buffer.first, !(0x41...0x5A).contains(first) { return nil }
            if let end = buffer.firstRange(of: [13, 10, 13, 10]) {
                let text = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                buffer.removeSubrange(..<end.upperBound)
                var lines = text.components(separatedBy: "\r\n")
                let start = lines.removeFirst()
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    let name = line[..<colon].lowercased()
                    let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    // A field sent more than once (Accept, as skopeo sends it) is one list.
                    headers[name] = headers[name].map { $0 + ", " + value } ?? value
                }
                return (start, headers)
            }
            guard fill() else { return nil }
        }
    }

    func readBody(_ headers: [String: String], untilClose: Bool) -> [UInt8]? {
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            var body: [UInt8] = []
            while true {
                guard let line = readLine(), let size = Int(line.split(separator: ";")[0], radix: 16) else {
                    return nil
                }
                if size == 0 {
                    _ = readLine()
                    return body
                }
                guard let chunk = read(size), readLine() != nil else { return nil }
                body += chunk
            }
        }
        if let length = headers["content-length"].flatMap({ Int($0) }) { return read(length) }
        if untilClose {
            while fill() {}
            defer { buffer.removeAll() }
            return buffer
        }
        return []
    }

    func readRequest() -> TestHTTPRequest? {
        guard let (start, headers) = readHead() else { return nil }
        let parts = start.split(separator: " ")
        guard parts.count >= 2, let body = readBody(headers, untilClose: false) else { return nil }
        return TestHTTPRequest(method: String(parts[0]), target: String(parts[1]), headers: headers, body: body)
    }

    private func read(_ count: Int) -> [UInt8]? {
        while buffer.count < count { guard fill() else { return nil } }
        defer { buffer.removeSubrange(..<count) }
        return Array(buffer[..<count])
    }

    private func readLine() -> String? {
        while true {
            if let end = buffer.firstRange(of: [13, 10]) {
                defer { buffer.removeSubrange(..<end.upperBound) }
                return String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
            }
            guard fill() else { return nil }
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }
}
