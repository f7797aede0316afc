import Foundation

/// A token server in the style of distribution's token auth: answers
/// `GET /token?service=...&scope=...` with an RS256 JWT whose `x5c` header
/// carries a certificate the registry trusts (`rootcertbundle`). Basic
/// credentials are required when `users` is not empty. `POST /token` with
/// the OAuth2 refresh-token grant answers for the identity tokens added
/// with `addIdentityToken` (what `docker login` stores).
public final class TokenIssuer: @unchecked Sendable {
    public let service = "ocirpc-test-registry"
    public let issuer = "ocirpc-test-issuer"
    public let directory: URL
    public let expiresIn: Int
    private let users: [String: String]
    private var server: TestHTTPServer!
    private let certificateDER: String
    private let lock = NSLock()
    private var issued: [String] = []
    private var requestCount = 0
    private var identityTokens: [String: String] = [:]
    private var grants = 0

    /// Refresh-token grants answered.
    public var refreshGrants: Int { lock.withLock { grants } }

    /// Accepts `token` as an identity (refresh) token of `user`.
    public func addIdentityToken(_ token: String, for user: String) {
        lock.withLock { identityTokens[token] = user }
    }

    public var realm: String { server.baseURL + "/token" }
    public var certificatePath: String { directory.appendingPathComponent("cert.pem").path }
    private var keyPath: String { directory.appendingPathComponent("key.pem").path }

    /// Tokens handed out so far (to check none leaks).
    public var tokens: [String] { lock.withLock { issued } }
    /// Token requests answered (successfully or not).
    public var requests: Int { lock.withLock { requestCount } }

    public init(users: [String: String] = [:], expiresIn: Int = 300, directory: URL) throws {
        self.users = users
        self.expiresIn = expiresIn
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keyPath = directory.appendingPathComponent("key.pem").path
        let certPath = directory.appendingPathComponent("cert.pem").path
        try Self.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath,
                "-out", certPath, "-days", "2", "-subj", "/CN=ocirpc-test-issuer",
            ])
        let pem = try String(contentsOfFile: certPath, encoding: .utf8)
        certificateDER = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        server = try TestHTTPServer { [unowned self] request in answer(request) }
    }

    public func stop() { server.stop() }

    /// A token for `subject` with `actions` on `repository` (none for the
    /// base endpoint).
    public func mint(subject: String, repository: String?, actions: [String]) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let header = #"{"typ":"JWT","alg":"RS256","x5c":["\#(certificateDER)"]}"#
        let access =
            repository.map {
                #"[{"type":"repository","name":"\#($0)","actions":[\#(actions.map { "\"\($0)\"" }.joined(separator: ","))]}]"#
            } ?? "[]"
        let claims =
            #"{"iss":"\#(issuer)","sub":"\#(subject)","aud":"\#(service)","exp":\#(now + expiresIn),"nbf":\#(now - 10),"iat":\#(now),"jti":"\#(UUID().uuidString)","access":\#(access)}"#
        let input = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(Data(claims.utf8))
        let signature = try Self.run(
            "/usr/bin/openssl", ["dgst", "-sha256", "-sign", keyPath], input: Data(input.utf8))
        return input + "." + Self.base64URL(signature)
    }

    private func answer(_ request: TestHTTPRequest) -> TestHTTPReply {
        lock.withLock { requestCount += 1 }
        guard request.path == "/token" else { return .response(status: 404, headers: [], body: []) }
        var subject = "anonymous"
        var scope = request.query["scope"]
        if request.method == "POST" {
            let form = request.form
            guard form["grant_type"] == "refresh_token", let refresh = form["refresh_token"],
                let user = lock.withLock({ identityTokens[refresh] })
            else {
                return .response(
                    status: 401, headers: [("Content-Type", "application/json")],
                    body: Array(#"{"error":"invalid_grant"}"#.utf8))
            }
            lock.withLock { grants += 1 }
            subject = user
            scope = form["scope"]
        } else if !users.isEmpty {
            guard let header = request.headers["authorization"], header.hasPrefix("Basic "),
                let decoded = Data(base64Encoded: String(header.dropFirst(6))).map({
                    String(decoding: $0, as: UTF8.self)
                }),
                let colon = decoded.firstIndex(of: ":"),
                users[String(decoded[..<colon])] == String(decoded[decoded.index(after: colon)...])
            else {
                return .response(
                    status: 401, headers: [("Content-Type", "application/json")],
                    body: Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.utf8))
            }
            subject = String(decoded[..<colon])
        }
        var repository: String?
        var actions: [String] = []
        if let scope {
            let parts = scope.split(separator: ":")
            if parts.count >= 3, parts[0] == "repository" {
                repository = parts[1..<(parts.count - 1)].joined(separator: ":")
                actions = parts.last!.split(separator: ",").map(String.init)
            }
        }
        guard let token = try? mint(subject: subject, repository: repository, actions: actions) else {
            return .response(status: 500, headers: [], body: [])
        }
        lock.withLock { issued.append(token) }
        let body = #"{"token":"\#(token)","access_token":"\#(token)","expires_in":\#(expiresIn)}"#
        return .response(status: 200, headers: [("Content-Type", "application/json")], body: Array(body.utf8))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @discardableResult
    static func run(_ tool: String, _ arguments: [String], input: Data? = nil) throws -> Data {
        let (status, output) = try ChildProcess.run(tool, arguments, input: input)
        guard status == 0 else { throw TestRegistryError("\(tool) \(arguments.first ?? "") failed") }
        return output
    }
}
