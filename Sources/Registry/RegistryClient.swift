import Reasons
import FoundationEssentials
import Glibc
import JSON
import Logging
import Memory

/// The registry client: builds requests for the endpoints the methods need,
/// authorizes them, and turns registry answers into values or typed errors.
/// One instance (one HTTP engine, one token cache) serves the process.
public final class RegistryClient: Sendable {
    /// What the client needs to know: schemes, transport, credentials, mirrors.
    public struct Configuration: Sendable {
        public var scheme = RegistryScheme()
        public var transport = TransportSettings()
        public var credentials = CredentialStore(environment: [:])
        /// Where each reference is pulled from: its mirrors, tried in order
        /// before its location, which registries.conf may move; or refused
        /// (`blocked` in registries.conf).
        public var routes = RegistryRoutes()
        /// Registries that may send requests into a local network though
        /// they are on the public internet (`--allow-local-redirects`).
        public var localNetworkRegistries: Set<String> = []
        /// What response bodies held in memory are taken from as they
        /// arrive (the calls in flight's budget); nil: they are not counted.
        public var memory: MemoryBudget?
        /// What downloads in flight may hold on disk together; nil: not counted.
        public var downloads: DownloadBudget?
        public init() {}
    }

    public let counters = RegistryCounters()
    let configuration: Configuration
    let transport: HTTPTransport
    let authenticator: Authenticator
    let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        transport = HTTPTransport(
            settings: configuration.transport, logger: logger, counters: counters, memory: configuration.memory,
            downloads: configuration.downloads)
        authenticator = Authenticator(
            transport: transport, credentials: configuration.credentials,
            scheme: configuration.scheme, localNetworkRegistries: configuration.localNetworkRegistries, logger: logger)
    }

    /// Where tasks that mostly wait for this client's requests may prefer
    /// to run (see `HTTPTransport.taskExecutor`).
    public var taskExecutor: (any TaskExecutor)? { transport.taskExecutor }

    /// What response bodies held in memory are taken from, if anything.
    public var memory: MemoryBudget? { configuration.memory }

    /// What downloads in flight are taken from, if anything.
    public var downloads: DownloadBudget? { configuration.downloads }

    /// Drops cached tokens.
    public func clearCaches() { authenticator.clear() }

    /// Runs `operation` against each mirror of `reference` in order, then
    /// against its location (the reference itself unless registries.conf
    /// moves it): the first success wins; a mirror's failure (missing,
    /// unreachable, corrupt) moves to the next.
    nonisolated(nonsending) func viaMirrors<T>(
        _ reference: ImageReference, _ operation: (ImageReference) async throws(RegistryError) -> T
    ) async throws(RegistryError) -> T {
        // Without rules every reference is asked for where it names: no
        // route is made (each request of a batch passes here).
        guard !configuration.routes.rules.isEmpty else { return try await operation(reference) }
        let route = try configuration.routes.route(reference)
        for mirror in route.mirrors {
            do {
                return try await operation(mirror)
            } catch  where error.kind != .cancelled {
                logger.debug(
                    "mirror failed; trying the next source",
                    [
                        ("mirror", "\(mirror.registry)/\(mirror.repository)"), ("registry", reference.registry),
                        ("reason", error.reason.rawValue),
                    ])
            }
        }
        return try await operation(route.primary)
    }

    /// Throws what a request for `reference` would be refused with before
    /// it is sent: `blocked`, or a name the registries configuration
    /// cannot move (callers that answer from elsewhere, such as a cache,
    /// ask first).
    public func refuseIfUnroutable(_ reference: ImageReference) throws(RegistryError) {
        try configuration.routes.refuseIfUnroutable(reference)
    }

    /// Where a tag of `reference` is resolved, when that is not where the
    /// name says: the mirrors that may answer it, then its location, as
    /// `registry/repository` joined by spaces. Nil without a rule that
    /// moves or mirrors the name.
    public func tagOrigin(_ reference: ImageReference) -> String? {
        guard !configuration.routes.rules.isEmpty, let route = try? configuration.routes.route(reference),
            !route.mirrors.isEmpty || route.primary.name != reference.name
        else { return nil }
        return (route.mirrors + [route.primary]).map(\.name).joined(separator: " ")
    }

    /// The registry name a setting means (`docker.io` is Docker Hub).
    public static func canonicalRegistry(_ name: String) -> String {
        name == "docker.io" || name == "registry-1.docker.io" ? ImageReference.dockerHub : name
    }

    /// `scheme://registry/v2/<repository>/<path>`.
    func url(_ reference: ImageReference, _ path: String) throws(RegistryError) -> String {
        let scheme = configuration.scheme.scheme(for: reference.registry)
        var url = String(joining: scheme, "://", reference.registry, "/v2/", reference.repository, "/", path)
        // Parsed references only hold URL-safe characters; a mirror's host
        // from the configuration is checked here.
        guard url.withUTF8({ $0.allSatisfy(Self.isURLSafe) }) else {
            throw RegistryError(
                .invalidReference, reason: .invalidReference, message: "cannot build a URL for \(reference)")
        }
        return url
    }

    /// Printable ASCII that may stand in a URL unescaped.
    static func isURLSafe(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\\"), UInt8(ascii: "^"),
            UInt8(ascii: "`"), UInt8(ascii: "{"), UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "%"),
            UInt8(ascii: "#"), UInt8(ascii: "?"):
            return false
        default:
            return byte > 0x20 && byte < 0x7F
        }
    }

    /// Sends an authorized request for `reference`'s repository: with the
    /// known credentials up front, and once more after a 401 challenge.
    /// `accept` is the `Accept` header's value (none when empty).
    func send(
        _ method: String, _ url: String, for reference: ImageReference, accept: String = "",
        kind: RegistryCounters.Kind, bodyLimit: Int = 4 << 20
    ) async throws(RegistryError) -> HTTPResponse {
        try await authorized(method, url, for: reference, accept: accept) { [transport] request throws(RegistryError) in
            let response = try await transport.send(request, kind: kind, bodyLimit: bodyLimit)
            return (response, response)
        }
    }

    /// Downloads into `directory`, hashing with `algorithm`, with the same
    /// authorization as `send`.
    func download(
        _ url: String, for reference: ImageReference, to directory: URL, hashing algorithm: Digest.Algorithm,
        limit: Int, kind: RegistryCounters.Kind, progress: DownloadProgress? = nil
    ) async throws(RegistryError) -> (file: DownloadedFile?, response: HTTPResponse) {
        try await authorized("GET", url, for: reference, accept: "") { [transport] request throws(RegistryError) in
            let result = try await transport.download(
                request, to: directory, hashing: algorithm, limit: limit, kind: kind, progress: progress)
            return (result, result.response)
        }
    }

    private func authorized<Result>(
        _ method: String, _ url: String, for reference: ImageReference, accept: String,
        _ perform: (HTTPRequest) async throws(RegistryError) -> (Result, HTTPResponse)
    ) async throws(RegistryError) -> Result {
        func scope() -> String { "repository:\(reference.repository):pull" }
        var request = HTTPRequest(method, url: url)
        if !accept.isEmpty { request.setHeader("Accept", accept) }
        if !configuration.localNetworkRegistries.isEmpty {
            request.mayEnterLocalNetworks = configuration.localNetworkRegistries.contains(reference.registry)
        }
        let sent = try await authenticator.authorization(
            registry: reference.registry, repository: reference.repository, scope: scope())
        if let sent { request.setHeader("Authorization", sent) }
        let (result, response) = try await perform(request)
        // A challenge counts only when the registry itself gave it: a 401
        // from a host it redirected to must not draw its credentials there.
        guard response.status == 401,
            response.challengeURL.map(HTTPRequest.origin(of:)) == HTTPRequest.origin(of: url),
            let authorization = try await authenticator.authorizationAfterChallenge(
                response, registry: reference.registry, repository: reference.repository, scope: scope(), sent: sent)
        else { return result }
        request.setHeader("Authorization", authorization)
        return try await perform(request).0
    }

    /// The typed error for a non-success registry answer.
    static func error(
        for response: HTTPResponse, notFoundReason: ErrorReason, what: String
    ) -> RegistryError {
        let details = registryErrors(in: response.body)
        let status = response.status
        func make(_ kind: RegistryError.Kind, _ reason: ErrorReason, _ message: String, retryable: Bool = false)
            -> RegistryError
        {
            let said = details.first.map { ": \($0.message.isEmpty ? $0.code : $0.message)" } ?? ""
            return RegistryError(
                kind, reason: reason, message: message + said, httpStatus: status,
                registryErrors: details, retryable: retryable)
        }
        switch status {
        case 404:
            // The registry's own code, when it is one of the not-found codes
            // of the distribution spec; anything else it says stays in the message.
            let reason: ErrorReason
            switch details.first?.code.lowercased() {
            case "manifest_unknown": reason = .manifestUnknown
            case "blob_unknown": reason = .blobUnknown
            case "name_unknown": reason = .nameUnknown
            default: reason = notFoundReason
            }
            return make(.notFound, reason, "\(what) not found")
        case 401: return make(.accessDenied, .unauthorized, "not authorized for \(what)")
        case 403: return make(.accessDenied, .denied, "access to \(what) denied")
        case 429: return make(.unavailable, .rateLimited, "rate limited fetching \(what)", retryable: true)
        case 500...599:
            return make(.unavailable, .serverError, "registry error \(status) fetching \(what)", retryable: true)
        default: return make(.unavailable, .serverError, "unexpected HTTP \(status) fetching \(what)")
        }
    }

    /// The registry's own `{"errors":[{code,message}]}`, if the body is one.
    /// Read on a tape (8 bytes a byte at most), not as a tree of values.
    static func registryErrors(in body: [UInt8]) -> [RegistryErrorDetail] {
        guard body.count < 1 << 20, let tape = try? JSONTape.parse(body) else { return [] }
        return tape.withRoot { value in
            var details: [RegistryErrorDetail] = []
            _ = value.member("errors")?.forEachElement { entry in
                guard let code = entry.member("code")?.stringText else { return }
                details.append(RegistryErrorDetail(code: code, message: entry.member("message")?.stringText ?? ""))
            }
            return details
        }
    }
}
