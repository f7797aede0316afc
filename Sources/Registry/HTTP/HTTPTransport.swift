import Reasons
import FoundationEssentials
import Glibc
import Locking
import Logging
import Memory
import Options
import Tally

/// The HTTP layer: the shared `CurlEngine` (kept-alive connections), timeouts,
/// and retries with exponential backoff and jitter on connection errors, 429
/// and 502/503/504 (honouring `Retry-After`).
package final class HTTPTransport: Sendable {
    /// The transport's settings.
    package typealias Settings = TransportSettings

    private let engineSettings: CurlEngine.Settings
    private let startedEngine = Locked<CurlEngine?>(nil)
    private let settings: Settings
    private let logger: Logger
    private let counters: RegistryCounters
    /// What bodies held in memory are taken from as they arrive, if anything.
    private let memory: MemoryBudget?
    /// What downloads are taken from as they are written, if anything.
    private let downloads: DownloadBudget?

    package init(
        settings: Settings, logger: Logger, counters: RegistryCounters, memory: MemoryBudget? = nil,
        downloads: DownloadBudget? = nil
    ) {
        self.settings = settings
        self.logger = logger
        self.counters = counters
        self.memory = memory
        self.downloads = downloads
        engineSettings = CurlEngine.Settings(
            timeout: settings.timeout, maxConnectionsPerHost: settings.maxConnectionsPerHost,
            caFile: settings.caFile, caDirectory: settings.caDirectory, publicAddresses: settings.publicAddresses)
    }

    /// The engine, started (and libcurl loaded) by the first request rather
    /// than at start-up, so a server answers its first call sooner.
    private func engine() throws(CurlFailure) -> CurlEngine {
        if let engine = startedEngine.withLock({ $0 }) { return engine }
        let engine = try CurlEngine.shared(engineSettings)
        startedEngine.withLock { $0 = engine }
        return engine
    }

    /// The HTTP engine's thread as a task executor: tasks that mostly wait
    /// for this transport's requests can prefer it and run between network
    /// events, without a thread switch per request.
    /// Nil when libcurl cannot be loaded (then every request fails anyway).
    package var taskExecutor: (any TaskExecutor)? { try? engine() }

    /// Sends `request`, retrying what is worth retrying, and returns the
    /// final response whatever its status. Throws only when no response came.
    /// A body longer than `bodyLimit` is cut at `bodyLimit + 1` bytes; the
    /// body is taken from the memory budget as it arrives, and a body the
    /// budget has no room for fails the request (`memory_limit`, retryable
    /// by the caller, not here: the memory is held by other calls).
    package func send(
        _ request: HTTPRequest, kind: RegistryCounters.Kind, bodyLimit: Int = 4 << 20
    ) async throws(RegistryError) -> HTTPResponse {
        try await withRetries(request, kind: kind, into: .memory(limit: bodyLimit)).response
    }

    /// Downloads `request` into a new file of `directory` (streamed, so
    /// memory stays flat, and hashed with `algorithm` on the way), with the
    /// same retries. The file, written only for a 2xx answer (other bodies
    /// are in the response, taken from the memory budget as `send`'s are),
    /// belongs to the caller; it is taken from the download budget as it is
    /// written, and a download the budget has no room for fails
    /// (`download_limit`, retryable by the caller, not here). A body over `limit`
    /// bytes fails the download (`blob_too_large`) as soon as it passes it.
    package func download(
        _ request: HTTPRequest, to directory: URL, hashing algorithm: Digest.Algorithm, limit: Int,
        kind: RegistryCounters.Kind, progress: DownloadProgress? = nil
    ) async throws(RegistryError) -> (file: DownloadedFile?, response: HTTPResponse) {
        let result = try await withRetries(
            request, kind: kind,
            into: .file(directory: directory, hashing: algorithm, limit: limit, progress: progress))
        return (result.file, result.response)
    }

    /// Performs `request` until it gives a response that is not worth
    /// retrying or the retries are spent.
    nonisolated(nonsending) private func withRetries(
        _ request: HTTPRequest, kind: RegistryCounters.Kind, into sink: BodySink
    ) async throws(RegistryError) -> CurlResult {
        var retry = 0
        let deadline = ContinuousClock.now + .milliseconds(Int(min(settings.requestTimeout, 86_400) * 1000))
        func secondsLeft() throws(RegistryError) -> Double {
            let left = ContinuousClock.now.duration(to: deadline)
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) * 1e-18
            guard seconds > 0.001 else {
                throw RegistryError(
                    .unavailable, reason: .timeout,
                    message: "\(request.authority) took longer than \(settings.requestTimeout) s (--request-timeout)")
            }
            return seconds
        }
        // A download that broke off part way is resumed: the next attempt
        // asks for the rest (`PartialDownload`). However the loop ends, what
        // was kept and not taken up is deleted.
        var partial: PartialDownload?
        defer { partial?.discard() }
        while true {
            try checkCancellation()
            let timeLimit = try secondsLeft()
            counters.count(kind)
            RequestTally.registryRequest()
            var attempt = request
            if let partial {
                attempt.setHeader("Range", partial.rangeHeader)
                logger.debug("resuming a download", [("from", String(partial.written)), ("host", request.authority)])
            }
            let result: CurlResult
            do {
                result = try await engine().perform(
                    attempt, into: sink, timeLimit: timeLimit, memory: memory, downloads: downloads,
                    resuming: partial)
            } catch {
                // The transfer kept what it wrote (its part, and the one it
                // took up), or deleted what it took up, or took nothing up;
                // a part answered with another range is not asked for again.
                if let kept = error.partial {
                    partial?.discard()
                    partial = kept
                } else if partial?.isTakenUp == true {
                    partial = nil
                } else if error.kind == .wrongRange {
                    partial?.discard()
                    partial = nil
                }
                let failure = Self.classify(Task.isCancelled ? .cancelled : error, host: request.authority)
                // What other calls hold is not freed by trying again at once.
                guard failure.retryable, !failure.reason.isHeldByCallsInFlight, retry < settings.retries else {
                    throw failure
                }
                retry += 1
                counters.countRetry()
                logger.debug(
                    "retrying after a connection error",
                    [("reason", failure.reason.rawValue), ("attempt", String(retry))])
                try await sleep(min(backoff(attempt: retry, retryAfter: nil), try secondsLeft()))
                continue
            }
            counters.countConnections(result.connectionsOpened)
            // A part taken up is the result's file now; one that was not
            // waits for the next attempt, or is deleted.
            if partial?.isTakenUp == true { partial = nil }
            let status = result.response.status
            // The range refused (416): the part kept is dropped, and the
            // next attempt, if there is one, asks for the whole blob.
            if status == 416, let refused = partial, retry < settings.retries {
                refused.discard()
                partial = nil
                retry += 1
                counters.countRetry()
                logger.debug("a range refused: asking for the whole", [("host", request.authority)])
                continue
            }
            guard Self.isRetryable(status: status) && retry < settings.retries else { return result }
            if let file = result.file { try? FileManager.default.removeItem(at: file.url) }
            retry += 1
            counters.countRetry()
            let delay = backoff(attempt: retry, retryAfter: result.response.header("Retry-After"))
            logger.debug(
                "retrying", [("status", String(status)), ("attempt", String(retry)), ("host", request.authority)])
            try await sleep(min(delay, try secondsLeft()))
        }
    }

    private func checkCancellation() throws(RegistryError) {
        if Task.isCancelled { throw RegistryError(.cancelled, reason: .cancelled, message: "cancelled") }
    }

    private func sleep(_ seconds: Double) async throws(RegistryError) {
        do {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        } catch {
            throw RegistryError(.cancelled, reason: .cancelled, message: "cancelled")
        }
    }

    static func isRetryable(status: Int) -> Bool {
        status == 429 || status == 502 || status == 503 || status == 504
    }

    /// Exponential backoff with full jitter, or the server's Retry-After
    /// (seconds), capped.
    func backoff(attempt: Int, retryAfter: String?) -> Double {
        if let retryAfter, let seconds = Double(OptionValue.trimmed(retryAfter)), seconds >= 0 {
            return min(seconds, settings.maxBackoff)
        }
        let ceiling = min(settings.maxBackoff, settings.baseBackoff * pow(2, Double(attempt - 1)))
        return Double.random(in: ceiling / 2...ceiling)
    }

    /// Maps a transfer failure onto the contract's reasons.
    static func classify(_ failure: CurlFailure, host: String) -> RegistryError {
        switch failure.kind {
        case .timeout:
            return RegistryError(
                .unavailable, reason: .timeout, message: "timed out talking to \(host)", retryable: true)
        case .deadline:
            // The server's limit: the original waits for a large blob
            // however long it takes, so this is never the registry's failure
            // (which a policy may let be undefined).
            return RegistryError(
                .limitExceeded, reason: .requestTimeout,
                message:
                    "\(host) was still answering when the request's time ran out (--request-timeout; \(failure.message))"
            )
        case .tls:
            return RegistryError(
                .unavailable, reason: .tls,
                message: "TLS failure with \(host): \(failure.message) (is its CA trusted? see --ca-file)")
        case .cancelled:
            return RegistryError(.cancelled, reason: .cancelled, message: "cancelled")
        case .localFile:
            return RegistryError(
                .internal, reason: .ioError, message: "could not store a download from \(host)")
        case .tooLarge:
            return RegistryError(.limitExceeded, reason: .blobTooLarge, message: "\(host): \(failure.message)")
        case .headersTooLarge:
            return RegistryError(.limitExceeded, reason: .headersTooLarge, message: "\(host): \(failure.message)")
        case .memoryLimit:
            return RegistryError(
                .limitExceeded, reason: MemoryLimitExceeded.reason, message: failure.message, retryable: true)
        case .downloadLimit:
            return RegistryError(.limitExceeded, reason: .downloadLimit, message: failure.message, retryable: true)
        case .descriptorLimit:
            return RegistryError(.limitExceeded, reason: .descriptorLimit, message: failure.message, retryable: true)
        case .threadLimit:
            return RegistryError(.limitExceeded, reason: .threadLimit, message: failure.message, retryable: true)
        case .localAddressRefused:
            return RegistryError(
                .accessDenied, reason: .localAddressRefused,
                message:
                    "refused to send a request to \(failure.message), an address of a local network, for \(host): a registry on the public internet cannot send requests into a local network (by a redirect or its token realm) unless allowed with --allow-local-redirects"
            )
        case .wrongRange:
            return RegistryError(
                .unavailable, reason: .serverError, message: "\(host) \(failure.message)", retryable: true)
        case .unsendableHeader:
            // Every value from outside is checked before it becomes a
            // header: one that reaches the engine is the server's fault.
            return RegistryError(
                .internal, reason: .internal, message: "refused to send a request to \(host): \(failure.message)")
        case .library:
            return RegistryError(.internal, reason: .internal, message: "HTTP is unavailable: \(failure.message)")
        case .connection:
            return RegistryError(
                .unavailable, reason: .connectionFailed,
                message: "could not reach \(host) (\(failure.message))", retryable: true)
        }
    }
}

/// How registry requests are made: timeouts, retries, connections, trusted CAs.
public struct TransportSettings: Sendable {
    /// Seconds of silence, or of less than 1 KiB/s, before an attempt fails.
    public var timeout: Double = 30
    /// Seconds one registry request may take in all, retries included.
    public var requestTimeout: Double = 600
    public var retries: Int = 3
    public var maxConnectionsPerHost: Int = 8
    /// First backoff delay; doubled per attempt, with jitter.
    public var baseBackoff: Double = 0.2
    public var maxBackoff: Double = 10
    /// A PEM bundle of trusted CAs instead of the system's (`--ca-file`, `SSL_CERT_FILE`).
    public var caFile: String?
    /// A directory of hashed CA certificates instead of the system's (`SSL_CERT_DIR`).
    public var caDirectory: String?
    /// Addresses counted as public whatever their range, so that tests,
    /// whose servers are all on loopback, can stand a registry on the
    /// public internet (`CurlEngine.Settings.publicAddresses`).
    package var publicAddresses: Set<String> = []
    public init() {}
}
