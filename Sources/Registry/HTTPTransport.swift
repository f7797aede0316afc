import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging

/// A response with its body in memory (manifests, tokens, error bodies).
public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header values by lower-cased name.
    public let headers: [String: String]
    public let body: Data
    /// The URL that answered (after redirects).
    public let url: URL?

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The `Content-Type` without parameters (`""` when absent).
    public var mediaType: String {
        header("Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    }

    func with(body: Data) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: body, url: url)
    }
}

/// The HTTP layer: one shared `URLSession`, timeouts, and retries with
/// exponential backoff and jitter on connection errors, 429 and 502/503/504
/// (honouring `Retry-After`).
public final class HTTPTransport: Sendable {
    public struct Settings: Sendable {
        public var timeout: Double = 30
        public var retries: Int = 3
        public var maxConnectionsPerHost: Int = 8
        /// First backoff delay; doubled per attempt, with jitter.
        public var baseBackoff: Double = 0.2
        public var maxBackoff: Double = 10
        public init() {}
    }

    private let session: URLSession
    private let delegate: SessionDelegate
    private let settings: Settings
    private let logger: Logger
    private let counters: RegistryCounters

    public init(settings: Settings, logger: Logger, counters: RegistryCounters) {
        self.settings = settings
        self.logger = logger
        self.counters = counters
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = settings.timeout
        configuration.httpMaximumConnectionsPerHost = settings.maxConnectionsPerHost
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        delegate = SessionDelegate()
        session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
    }

    /// Sends `request`, retrying what is worth retrying, and returns the
    /// final response whatever its status. Throws only when no response came.
    public func send(_ request: URLRequest, kind: RegistryCounters.Kind) async throws(RegistryError) -> HTTPResponse {
        let (data, response) = try await withRetries(request, kind: kind) { [delegate, session] in
            let (data, http) = try await delegate.fetch(request, in: session)
            return (data, http, {})
        }
        return response.with(body: data)
    }

    /// Downloads `request` into a file of `directory` (streamed, so memory
    /// stays flat), with the same retries. The file (nil when the answer had
    /// no body, as for a 401) belongs to the caller.
    public func download(
        _ request: URLRequest, to directory: URL, kind: RegistryCounters.Kind
    ) async throws(RegistryError) -> (file: URL?, response: HTTPResponse) {
        let (file, response) = try await withRetries(request, kind: kind) { [delegate, session] in
            let (file, http) = try await delegate.download(request, in: session, to: directory)
            return (file, http, { if let file { try? FileManager.default.removeItem(at: file) } })
        }
        return (file, response)
    }

    /// Runs `attempt` until it gives a response that is not worth retrying
    /// or the retries are spent. `attempt` returns its payload, the response
    /// and how to discard the payload of a response that will be retried.
    private func withRetries<Payload>(
        _ request: URLRequest, kind: RegistryCounters.Kind,
        _ attempt: @escaping () async throws -> (Payload, HTTPURLResponse, () -> Void)
    ) async throws(RegistryError) -> (Payload, HTTPResponse) {
        var retry = 0
        while true {
            try checkCancellation()
            counters.count(kind)
            do {
                let (payload, http, discard) = try await attempt()
                var headers: [String: String] = [:]
                for (key, value) in http.allHeaderFields {
                    if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
                }
                let result = HTTPResponse(status: http.statusCode, headers: headers, body: Data(), url: http.url)
                if Self.isRetryable(status: http.statusCode) && retry < settings.retries {
                    discard()
                    retry += 1
                    counters.countRetry()
                    let delay = backoff(attempt: retry, retryAfter: result.header("Retry-After"))
                    logger.debug("retrying", [("status", String(http.statusCode)), ("attempt", String(retry)),
                                              ("host", request.url?.host ?? "")])
                    try await sleep(delay)
                    continue
                }
                return (payload, result)
            } catch let error as RegistryError {
                throw error
            } catch {
                if error is CancellationError || Task.isCancelled {
                    throw RegistryError(.unavailable, reason: "cancelled", message: "cancelled")
                }
                let failure = Self.classify(error, host: request.url?.host ?? "")
                guard failure.retryable && retry < settings.retries else { throw failure }
                retry += 1
                counters.countRetry()
                logger.debug("retrying after a connection error", [("reason", failure.reason), ("attempt", String(retry))])
                try await sleep(backoff(attempt: retry, retryAfter: nil))
            }
        }
    }

    private func checkCancellation() throws(RegistryError) {
        if Task.isCancelled { throw RegistryError(.unavailable, reason: "cancelled", message: "cancelled") }
    }

    private func sleep(_ seconds: Double) async throws(RegistryError) {
        do {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        } catch {
            throw RegistryError(.unavailable, reason: "cancelled", message: "cancelled")
        }
    }

    static func isRetryable(status: Int) -> Bool {
        status == 429 || status == 502 || status == 503 || status == 504
    }

    /// Exponential backoff with full jitter, or the server's Retry-After
    /// (seconds), capped.
    func backoff(attempt: Int, retryAfter: String?) -> Double {
        if let retryAfter, let seconds = Double(retryAfter.trimmingCharacters(in: .whitespaces)), seconds >= 0 {
            return min(seconds, settings.maxBackoff)
        }
        let ceiling = min(settings.maxBackoff, settings.baseBackoff * pow(2, Double(attempt - 1)))
        return Double.random(in: ceiling / 2...ceiling)
    }

    /// Maps a URLSession failure onto the contract's reasons.
    static func classify(_ error: any Error, host: String) -> RegistryError {
        let code = (error as? URLError)?.code
        switch code {
        case .timedOut?:
            return RegistryError(.unavailable, reason: "timeout", message: "timed out talking to \(host)", retryable: true)
        case .badURL? where host.isEmpty == false:
            // FoundationNetworking on Linux reports a refused certificate so.
            return RegistryError(.unavailable, reason: "tls",
                                 message: "TLS failure with \(host) (is its certificate trusted by the system store?)")
        case .serverCertificateUntrusted?, .serverCertificateHasBadDate?, .serverCertificateNotYetValid?,
             .serverCertificateHasUnknownRoot?, .clientCertificateRejected?, .secureConnectionFailed?:
            return RegistryError(.unavailable, reason: "tls", message: "TLS failure with \(host)")
        default:
            return RegistryError(.unavailable, reason: "connection_failed",
                                 message: "could not reach \(host) (\(code.map { "\($0.rawValue)" } ?? "network error"))",
                                 retryable: true)
        }
    }
}

