import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A fault the proxy injects instead of (or on top of) forwarding.
public enum ProxyFault: Sendable {
    /// Close the connection without an answer.
    case reset
    /// Answer with this status (and `Retry-After` when given), not forwarding.
    case status(Int, retryAfter: String? = nil)
    /// Forward, then send only half of the body and close.
    case truncate
    /// Forward, then flip bytes in the body.
    case corrupt
    /// Wait this many seconds, then forward.
    case delay(Double)
    /// Answer 307 to this URL.
    case redirect(String)
}

/// A forwarding HTTP proxy in front of a test registry, which counts the
/// requests it sees by kind and injects faults a real registry cannot
/// produce (resets, 429/503, truncated or corrupted bodies, slowness,
/// cross-host redirects).
public final class RegistryProxy: @unchecked Sendable {
    private var server: TestHTTPServer!
    private let upstreamPort: Int
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var requests: [TestHTTPRequest] = []
    private var answers: [Answer] = []
    private var rule: @Sendable (TestHTTPRequest) -> ProxyFault? = { _ in nil }
    private var latency: Double = 0
    /// Upstream connections kept alive between requests.
    private var idle: [(fd: Int32, reader: SocketReader)] = []

    /// `127.0.0.1:<port>`, as references name it.
    public var host: String { "127.0.0.1:\(server.port)" }

    public init(upstream: String) throws {
        guard let port = upstream.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw TestRegistryError("upstream must be host:port")
        }
        upstreamPort = port
        server = try TestHTTPServer { [unowned self] request in handle(request) }
    }

    public func stop() {
        server.stop()
        for connection in lock.withLock({ () -> [(fd: Int32, reader: SocketReader)] in
            defer { idle.removeAll() }
            return idle
        }) {
            close(connection.fd)
        }
    }

    /// Decides the fault (if any) for each request from now on.
    public func inject(_ rule: @escaping @Sendable (TestHTTPRequest) -> ProxyFault?) {
        lock.withLock { self.rule = rule }
    }

    /// Added before every forwarded request, in seconds.
    public func setLatency(_ seconds: Double) { lock.withLock { latency = seconds } }

    /// Requests seen, by kind: `manifest`, `blob`, `referrers`, `ping`, `other`.
    public func count(_ kind: String) -> Int { lock.withLock { counts[kind, default: 0] } }

    /// Every request seen so far.
    public var seen: [TestHTTPRequest] { lock.withLock { requests } }

    /// What the upstream answered a forwarded request: its path, status,
    /// and the body bytes the proxy passed on (fewer when truncated).
    public struct Answer: Sendable {
        public let path: String
        public let status: Int
        public let bytesSent: Int
    }

    /// Every upstream answer passed on so far, in order.
    public var answered: [Answer] { lock.withLock { answers } }

    public func resetCounts() {
        lock.withLock {
            counts.removeAll(); requests.removeAll(); answers.removeAll()
        }
    }

    public static func kind(of path: String) -> String {
        if path == "/v2/" || path == "/v2" { return "ping" }
        if path.contains("/manifests/") { return "manifest" }
        if path.contains("/blobs/") { return "blob" }
        if path.contains("/referrers/") { return "referrers" }
        return "other"
    }

    private func handle(_ request: TestHTTPRequest) -> TestHTTPReply {
        let (fault, delay) = lock.withLock { () -> (ProxyFault?, Double) in
            counts[Self.kind(of: request.path), default: 0] += 1
            requests.append(request)
            return (rule(request), latency)
        }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        switch fault {
        case .reset?:
            return .reset
        case .status(let code, let retryAfter)?:
            var headers = [("Content-Type", "application/json")]
            if let retryAfter { headers.append(("Retry-After", retryAfter)) }
            let body = Array(#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected \#(code)"}]}"#.utf8)
            return .response(status: code, headers: headers, body: body)
        case .redirect(let location)?:
            return .response(status: 307, headers: [("Location", location)], body: [])
        case .delay(let seconds)?:
            Thread.sleep(forTimeInterval: seconds)
        default:
            break
        }
        guard let (status, headers, body) = forward(request) else { return .reset }
        let sent = if case .truncate? = fault { body.count / 2 } else { body.count }
        lock.withLock { answers.append(Answer(path: request.path, status: status, bytesSent: sent)) }
        switch fault {
        case .truncate?:
            return .truncated(
                status: status, headers: headers, body: Array(body.prefix(body.count / 2)), declaredLength: body.count)
        case .corrupt?:
            var flipped = body
            for i in flipped.indices where i % 7 == 0 { flipped[i] ^= 0x55 }
            return .response(status: status, headers: headers, body: flipped)
        default:
            return .response(status: status, headers: headers, body: body)
        }
    }

    /// One request to the upstream, on a kept-alive connection when there
    /// is one. The registry may have closed an idle connection meanwhile:
    /// then the request goes once more on a fresh one.
    private func forward(_ request: TestHTTPRequest) -> (Int, [(String, String)], [UInt8])? {
        if let pooled = lock.withLock({ idle.popLast() }), let answer = exchange(request, pooled) { return answer }
        guard let fd = LoopbackSocket.connect(port: upstreamPort) else { return nil }
        return exchange(request, (fd, SocketReader(fd: fd)))
    }

    /// Sends `request` on `connection` and reads the answer; the connection
    /// goes back to the pool unless the answer ends it.
    private func exchange(
        _ request: TestHTTPRequest, _ connection: (fd: Int32, reader: SocketReader)
    ) -> (Int, [(String, String)], [UInt8])? {
        var keep = false
        defer {
            if keep { lock.withLock { idle.append(connection) } } else { close(connection.fd) }
        }
        var text = "\(request.method) \(request.target) HTTP/1.1\r\nHost: 127.0.0.1:\(upstreamPort)\r\n"
        for (name, value) in request.headers where !["host", "connection", "content-length"].contains(name) {
            text += "\(name): \(value)\r\n"
        }
        text += "Content-Length: \(request.body.count)\r\n\r\n"
        guard SocketReader.writeAll(connection.fd, Array(text.utf8) + request.body),
            let (start, headers) = connection.reader.readHead()
        else { return nil }
        let parts = start.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        // Without a length or chunks, the body runs to the end of the connection.
        let delimited =
            headers["content-length"] != nil || headers["transfer-encoding"] != nil
            || request.method == "HEAD" || status == 204 || status == 304
        let body: [UInt8]
        if request.method == "HEAD" {
            body = []
        } else {
            guard let read = connection.reader.readBody(headers, untilClose: !delimited) else { return nil }
            body = read
        }
        keep = delimited && headers["connection"]?.lowercased() != "close"
        var list = headers.map { ($0.key, $0.value) }
        if let location = headers["location"], location.hasPrefix("http://127.0.0.1:\(upstreamPort)") {
            list =
                list.filter { $0.0 != "location" } + [
                    ("Location", location.replacingOccurrences(of: "127.0.0.1:\(upstreamPort)", with: host))
                ]
        }
        return (status, list, body)
    }
}
