import Reasons
import FoundationEssentials
import Glibc
import JSON
import Locking
import Logging

/// Registry authentication: anonymous, Basic, and Bearer tokens per the
/// distribution token spec.
///
/// Learns each registry's challenge from its first 401 and then authorizes
/// requests up front, so a request costs one round trip. Tokens are cached
/// per registry and scope until they expire and shared by every request;
/// concurrent requests for the same scope share one token fetch.
final class Authenticator: Sendable {
    struct CachedToken {
        let value: String
        let expires: ContinuousClock.Instant
    }

    private let transport: HTTPTransport
    private let credentials: CredentialStore
    private let scheme: RegistryScheme
    /// Registries whose token realm may be in a local network though they
    /// are on the public internet (`--allow-local-redirects`).
    private let localNetworkRegistries: Set<String>
    private let logger: Logger
    /// Tokens and challenges kept at most (registries and scopes come from
    /// refs, which callers choose freely).
    static let maxCachedTokens = 1024
    static let maxCachedChallenges = 1024
    /// A token server's answer is at most this: tokens are a few KiB (a
    /// JWT with its certificate chain a few more), and an answer is read
    /// whole before its token is.
    static let maxTokenBodyBytes = 1 << 20
    private let challenges = Locked([String: AuthChallenge]())
    private let tokens = Locked([String: CachedToken]())
    private let tokenFetches = Locked([String: Task<CachedToken, any Error>]())

    init(
        transport: HTTPTransport, credentials: CredentialStore, scheme: RegistryScheme,
        localNetworkRegistries: Set<String> = [], logger: Logger
    ) {
        self.transport = transport
        self.credentials = credentials
        self.scheme = scheme
        self.localNetworkRegistries = localNetworkRegistries
        self.logger = logger
    }

    /// The `Authorization` header for a request to `registry` about
    /// `repository` needing `scope`, when the registry's challenge is
    /// already known.
    func authorization(registry: String, repository: String, scope: @autoclosure () -> String)
        async throws(RegistryError) -> String?
    {
        // No challenge learnt from this registry (an anonymous one): the
        // scope is not even made.
        guard let challenge = challenges.withLock({ $0[registry] }) else { return nil }
        do {
            return try await authorization(
                for: challenge, registry: registry, repository: repository, scope: scope(), refresh: false)
        } catch  where error.kind != .cancelled {
            // A challenge no token can be had for (a realm gone or never
            // usable, as a registry misconfigured for a moment sends) is
            // forgotten, and the request goes without credentials: the
            // registry's 401 names its challenge anew, and a token that
            // still cannot be had fails the request then. Kept, it failed
            // every later request to the registry without asking it.
            challenges.withLock { challenges in
                if challenges[registry] == challenge { challenges[registry] = nil }
            }
            return nil
        }
    }

    /// After a 401: learns the challenge and returns the header to retry
    /// with, or nil when there is nothing better to try. `sent` is the
    /// `Authorization` the challenged request carried: a token is fetched
    /// anew only when the request carried the cached one; a request sent
    /// before another one cached a token retries with that token.
    func authorizationAfterChallenge(
        _ response: HTTPResponse, registry: String, repository: String, scope: String, sent: String?
    ) async throws(RegistryError) -> String? {
        guard let header = response.header("WWW-Authenticate"), var challenge = AuthChallenge(header) else {
            return nil
        }
        challenge.fromPublicAddress = response.fromPublicAddress
        challenges.withLock { challenges in
            if challenges.count >= Self.maxCachedChallenges && challenges[registry] == nil { challenges.removeAll() }
            challenges[registry] = challenge
        }
        return try await authorization(
            for: challenge, registry: registry, repository: repository, scope: scope, refresh: true, sent: sent)
    }

    /// Drops every cached token (for `server.clearCache`).
    func clear() {
        tokens.withLock { $0.removeAll() }
    }

    private func authorization(
        for challenge: AuthChallenge, registry: String, repository: String, scope: String, refresh: Bool,
        sent: String? = nil
    ) async throws(RegistryError) -> String? {
        switch challenge.scheme {
        case .basic:
            guard let creds = await credentials.credentials(for: registry, repository: repository) else { return nil }
            if let registryToken = creds.registryToken { return "Bearer \(try Self.sendable(registryToken, registry))" }
            guard !creds.username.isEmpty else { return nil }
            return Self.basic(creds)
        case .bearer:
            // The scope names the repository, so a token bought with one
            // repository's credentials never serves another's.
            let key = "\(registry) \(scope)"
            if let cached = usableToken(key, refresh: refresh, sent: sent) { return "Bearer \(cached.value)" }
            let token = try await sharedTokenFetch(
                key: key, challenge: challenge, registry: registry, repository: repository, scope: scope,
                refresh: refresh, sent: sent)
            return "Bearer \(token.value)"
        }
    }

    /// The cached token for `key` when it is unexpired and may be used:
    /// always, except to refresh the very token the request carried (`sent`).
    private func usableToken(_ key: String, refresh: Bool, sent: String?) -> CachedToken? {
        guard let cached = tokens.withLock({ $0[key] }), cached.expires > .now else { return nil }
        return !refresh || "Bearer \(cached.value)" != sent ? cached : nil
    }

    private func sharedTokenFetch(
        key: String, challenge: AuthChallenge, registry: String, repository: String, scope: String, refresh: Bool,
        sent: String?
    ) async throws(RegistryError) -> CachedToken {
        let task: Task<CachedToken, any Error> = tokenFetches.withLock { fetches in
            if let running = fetches[key] { return running }
            // A fetch that ended since the caller looked cached its token
            // before leaving this table.
            if let cached = usableToken(key, refresh: refresh, sent: sent) { return Task { cached } }
            let task = Task { [self] () async throws -> CachedToken in
                defer { tokenFetches.withLock { _ = $0.removeValue(forKey: key) } }
                let token = try await fetchToken(
                    challenge: challenge, registry: registry, repository: repository, scope: scope)
                tokens.withLock { tokens in
                    Self.makeRoom(in: &tokens)
                    tokens[key] = token
                }
                return token
            }
            fetches[key] = task
            return task
        }
        do {
            return try await task.value
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError(.accessDenied, reason: .unauthorized, message: "token request failed")
        }
    }

    private func fetchToken(challenge: AuthChallenge, registry: String, repository: String, scope: String)
        async throws(RegistryError) -> CachedToken
    {
        let creds = await credentials.credentials(for: registry, repository: repository)
        // A registry token is the bearer token itself: no realm is asked.
        if let registryToken = creds?.registryToken {
            return CachedToken(
                value: try Self.sendable(registryToken, registry),
                expires: .now + .seconds(Self.tokenLifetime(expiresIn: nil)))
        }
        guard let realm = challenge.parameters["realm"], let components = URLComponents(string: realm),
            components.scheme == "https" || components.scheme == "http"
        else {
            throw RegistryError(
                .accessDenied, reason: .unauthorized,
                message: "\(registry) sent a bearer challenge without a usable realm")
        }
        // Credentials go over plain HTTP only to a registry spoken to in plain
        // HTTP already (loopback, private, --insecure-registry): an HTTPS
        // registry's secrets never travel in clear text to its token realm.
        let plainRealm = components.scheme == "http"
        if plainRealm && scheme.scheme(for: registry) == "https" {
            throw RegistryError(
                .accessDenied, reason: .unauthorized,
                message: "\(registry) named a plain-HTTP token realm; refused for an HTTPS registry")
        }
        let onlyPublicAddresses = challenge.fromPublicAddress && !localNetworkRegistries.contains(registry)
        func send(_ request: HTTPRequest) async throws(RegistryError) -> HTTPResponse {
            var request = request
            request.onlyPublicAddresses = onlyPublicAddresses
            return try await transport.send(request, kind: .token, bodyLimit: Self.maxTokenBodyBytes)
        }
        // The GET every token server answers: the realm's own query as it
        // was written, then ours.
        func tokenGet() throws(RegistryError) -> HTTPRequest {
            var pairs: [(String, String)] = []
            if let service = challenge.parameters["service"] { pairs.append(("service", service)) }
            pairs.append(("scope", scope))
            var withQuery = components
            let own = components.percentEncodedQuery.flatMap { $0.isEmpty ? nil : $0 }
            withQuery.percentEncodedQuery = [own, Self.formEncoded(pairs)].compactMap { $0 }.joined(separator: "&")
            guard let url = withQuery.url else {
                throw RegistryError(.accessDenied, reason: .unauthorized, message: "invalid token realm")
            }
            var request = HTTPRequest(url: url)
            // Offered up front: public token servers hand out anonymous
            // tokens otherwise.
            if let creds, !creds.username.isEmpty { request.setHeader("Authorization", Self.basic(creds)) }
            return request
        }
        var response: HTTPResponse
        if let identityToken = creds?.identityToken {
            // OAuth2 refresh-token grant (what `docker login` stores).
            guard let url = components.url else {
                throw RegistryError(.accessDenied, reason: .unauthorized, message: "invalid token realm")
            }
            var request = HTTPRequest("POST", url: url)
            request.setHeader("Content-Type", "application/x-www-form-urlencoded")
            let form = Self.formEncoded([
                ("grant_type", "refresh_token"), ("refresh_token", identityToken),
                ("service", challenge.parameters["service"] ?? ""), ("scope", scope), ("client_id", "ocirpc"),
            ])
            request.body = Data(form.utf8)
            response = try await send(request)
            // Not every token server takes the grant: on 404 the GET is
            // asked, as go-containerregistry asks it.
            if response.status == 404 { response = try await send(try tokenGet()) }
        } else {
            response = try await send(try tokenGet())
        }
        guard response.status == 200 else {
            throw RegistryError(
                .accessDenied, reason: response.status == 403 ? .denied : .unauthorized,
                message: "token server refused access to \(scope) (HTTP \(response.status))",
                httpStatus: response.status)
        }
        guard response.body.count <= Self.maxTokenBodyBytes else {
            throw RegistryError(
                .accessDenied, reason: .unauthorized,
                message: "token server answered with over \(Self.maxTokenBodyBytes >> 20) MiB for \(scope)")
        }
        // Read on a tape (8 bytes a byte at most), not as a tree of values.
        let token = (try? JSONTape.parse(response.body))?.withRoot { body in
            (
                value: body.member("token")?.stringText ?? body.member("access_token")?.stringText,
                expiresIn: body.member("expires_in")?.numberText.flatMap { Int($0) }
            )
        }
        guard let token, let value = token.value, !value.isEmpty else {
            throw RegistryError(.accessDenied, reason: .unauthorized, message: "token server answered without a token")
        }
        // The token goes into the registry's requests as a header line: a
        // line break in it would add headers, or a whole request, of the
        // token server's choosing. Refused as Go's client refuses it.
        guard HTTPRequest.Header.isSendableValue(value) else {
            throw RegistryError(
                .accessDenied, reason: .unauthorized,
                message: "token server answered with a token holding a control character for \(scope); not sent")
        }
        let lifetime = Self.tokenLifetime(expiresIn: token.expiresIn)
        logger.debug("token obtained", [("registry", registry), ("scope", scope), ("expiresIn", String(lifetime))])
        return CachedToken(value: value, expires: .now + .seconds(lifetime))
    }

    /// `pairs` as `application/x-www-form-urlencoded` text (a token
    /// request's query, or its body): every byte but `A-Z a-z 0-9 - . _ ~`
    /// written as `%XX`, as Go's `url.Values.Encode` does. A `+` left as
    /// it is reads as a space to a token server (an identity token in
    /// standard base64 was refused), and `URLComponents` leaves it.
    static func formEncoded(_ pairs: [(String, String)]) -> String {
        func escaped(_ text: String) -> String {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(text.utf8.count)
            let hex = Array("0123456789ABCDEF".utf8)
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                    UInt8(ascii: "~"):
                    bytes.append(byte)
                default:
                    bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return pairs.map { escaped($0.0) + "=" + escaped($0.1) }.joined(separator: "&")
    }

    /// `registryToken`, the credentials' own bearer token for `registry`,
    /// when it can be a header's value; it is not sent otherwise.
    private static func sendable(_ registryToken: String, _ registry: String) throws(RegistryError) -> String {
        guard HTTPRequest.Header.isSendableValue(registryToken) else {
            throw RegistryError(
                .accessDenied, reason: .unauthorized,
                message: "the registry token for \(registry) in the credentials holds a control character; not sent")
        }
        return registryToken
    }

    /// The longest a token is kept, whatever its server says.
    static let maxTokenLifetime = 86_400

    /// Seconds a token is kept when its server says it expires in
    /// `expiresIn` (nil: the spec's default of 60 s): renewed 5 s early,
    /// kept 1 s at least and `maxTokenLifetime` at most. The number is the
    /// token server's, any Int: nothing here can overflow.
    static func tokenLifetime(expiresIn: Int?) -> Int {
        let seconds = expiresIn ?? 60
        return seconds > 6 ? min(maxTokenLifetime, seconds - 5) : 1
    }

    /// Keeps the token cache under its bound: expired tokens go first, then
    /// those that expire soonest.
    static func makeRoom(in tokens: inout [String: CachedToken], limit: Int = maxCachedTokens) {
        guard tokens.count >= limit else { return }
        let now = ContinuousClock.now
        tokens = tokens.filter { $0.value.expires > now }
        while tokens.count >= limit, let soonest = tokens.min(by: { $0.value.expires < $1.value.expires }) {
            tokens[soonest.key] = nil
        }
    }

    private static func basic(_ creds: Credentials) -> String {
        "Basic " + Data("\(creds.username):\(creds.secret)".utf8).base64EncodedString()
    }
}
