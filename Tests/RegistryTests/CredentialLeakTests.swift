import Foundation
import JSON
import Locking
import Testing
import TestFixtures
@testable import Registry

/// A registry's credentials go to that registry (and the token server it
/// names for itself), never to a host it redirects to.
/// `u:secret`, as a docker config's `auth` holds it.
private let basicAuth = Data("u:secret".utf8).base64EncodedString()

/// A client, with no retries, whose docker config is `entry` for
/// `registry`, and the config's directory (the caller removes it).
private func client(for registry: String, entry: String) throws -> (RegistryClient, URL) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("leak-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try Data(#"{"auths":{"\#(registry)":\#(entry)}}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
    var configuration = RegistryClient.Configuration()
    configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path])
    configuration.transport.retries = 0
    return (RegistryClient(configuration: configuration, logger: .disabled), dir)
}

@Suite struct CredentialLeakTests {
    /// A client with Basic credentials `u:secret` for `registry`.
    private func client(for registry: String) throws -> (RegistryClient, URL) {
        try RegistryTests.client(for: registry, entry: #"{"auth":"\#(basicAuth)"}"#)
    }

    @Test func aForeignChallengeAfterARedirectIsNotLearntAndGetsNoCredentials() async throws {
        let tokenRequests = Locked<[TestHTTPRequest]>([])
        let tokenServer = try TestHTTPServer { request in
            tokenRequests.withLock { $0.append(request) }
            return .response(status: 200, headers: [], body: Array(#"{"token":"stolen"}"#.utf8))
        }
        let foreignRequests = Locked<[TestHTTPRequest]>([])
        let foreign = try TestHTTPServer { request in
            foreignRequests.withLock { $0.append(request) }
            return .response(
                status: 401,
                headers: [("WWW-Authenticate", #"Bearer realm="\#(tokenServer.baseURL)/token",service="evil""#)],
                body: [])
        }
        let manifest = Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.utf8)
        let expected = "Basic " + Data("u:secret".utf8).base64EncodedString()
        let registry = try TestHTTPServer { request in
            if request.path.contains("/blobs/") {
                return .response(status: 302, headers: [("Location", "\(foreign.baseURL)/storage/blob")], body: [])
            }
            guard request.headers["authorization"] == expected else {
                return .response(status: 401, headers: [("WWW-Authenticate", #"Basic realm="registry""#)], body: [])
            }
            return .response(
                status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")], body: manifest)
        }
        defer { tokenServer.stop(); foreign.stop(); registry.stop() }
        let host = "127.0.0.1:\(registry.port)"
        let (client, dir) = try client(for: host)
        defer { try? FileManager.default.removeItem(at: dir) }

        let digest = Digest.of(Array("blob".utf8))
        await #expect(throws: RegistryError.self) {
            _ = try await client.fetchBlob(try ImageReference.parse("\(host)/app@\(digest)"))
        }
        // The registry's own challenge still works for another repository,
        // and nothing went to the foreign realm.
        let fetched = try await client.fetchManifest(try ImageReference.parse("\(host)/other:v1"))
        #expect(fetched.bytes == manifest)
        let digestAgain = Digest.of(Array("again".utf8))
        _ = try? await client.fetchBlob(try ImageReference.parse("\(host)/third@\(digestAgain)"))
        #expect(tokenRequests.withLock { $0 }.isEmpty)
        #expect(foreignRequests.withLock { $0 }.allSatisfy { $0.headers["authorization"] == nil })
    }

    /// A `registrytoken` is sent only to its registry: not to a host the
    /// registry redirects to, though that host challenges for Basic.
    @Test func aRegistryTokenNeverGoesToAHostTheRegistryRedirectsTo() async throws {
        let foreignRequests = Locked<[TestHTTPRequest]>([])
        let foreign = try TestHTTPServer { request in
            foreignRequests.withLock { $0.append(request) }
            return .response(status: 401, headers: [("WWW-Authenticate", #"Basic realm="evil""#)], body: [])
        }
        let registry = try TestHTTPServer { request in
            if request.path.contains("/blobs/") {
                return .response(status: 302, headers: [("Location", "\(foreign.baseURL)/storage/blob")], body: [])
            }
            guard request.headers["authorization"] == "Bearer secret-token" else {
                return .response(status: 401, headers: [("WWW-Authenticate", #"Basic realm="registry""#)], body: [])
            }
            return .response(
                status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                body: bearerRegistryManifest)
        }
        defer { foreign.stop(); registry.stop() }
        let host = "127.0.0.1:\(registry.port)"
        let (client, dir) = try RegistryTests.client(for: host, entry: #"{"registrytoken":"secret-token"}"#)
        defer { try? FileManager.default.removeItem(at: dir) }

        // The registry's challenge is learnt: its token goes with the blob
        // request, and libcurl drops it at the redirect.
        let fetched = try await client.fetchManifest(try ImageReference.parse("\(host)/app:v1"))
        #expect(fetched.bytes == bearerRegistryManifest)
        let digest = Digest.of(Array("blob".utf8))
        await #expect(throws: RegistryError.self) {
            _ = try await client.fetchBlob(try ImageReference.parse("\(host)/app@\(digest)"))
        }
        let seen = foreignRequests.withLock { $0 }
        #expect(!seen.isEmpty)
        #expect(seen.allSatisfy { $0.headers["authorization"] == nil })
    }

    @Test func anHTTPSRegistrysPlainHTTPRealmGetsNoCredentials() async throws {
        let tokenRequests = Locked<[TestHTTPRequest]>([])
        let tokenServer = try TestHTTPServer { request in
            tokenRequests.withLock { $0.append(request) }
            return .response(status: 200, headers: [], body: Array(#"{"token":"t"}"#.utf8))
        }
        defer { tokenServer.stop() }
        let (client, dir) = try client(for: "registry.example")
        defer { try? FileManager.default.removeItem(at: dir) }
        let challenge = HTTPResponse(
            status: 401, headers: ["www-authenticate": #"Bearer realm="\#(tokenServer.baseURL)/token""#],
            body: [], challengeURL: "https://registry.example/v2/app/manifests/v1")
        await #expect(throws: RegistryError.self) {
            _ = try await client.authenticator.authorizationAfterChallenge(
                challenge, registry: "registry.example", repository: "app",
                scope: "repository:app:pull", sent: nil)
        }
        #expect(tokenRequests.withLock { $0 }.isEmpty)
    }
}

/// What `bearerRegistry` serves.
private let bearerRegistryManifest = Array(
    #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.utf8)

/// A registry that serves `bearerRegistryManifest` to a request that carries
/// `Bearer <token>`, and challenges any other with `realm`.
private func bearerRegistry(token: String, realm: String) throws -> TestHTTPServer {
    try TestHTTPServer { request in
        guard request.headers["authorization"] == "Bearer \(token)" else {
            return .response(
                status: 401, headers: [("WWW-Authenticate", #"Bearer realm="\#(realm)",service="r""#)], body: [])
        }
        return .response(
            status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            body: bearerRegistryManifest)
    }
}

/// A token server's token goes into the registry's requests as a header
/// line: one that would add lines of the token server's choosing is
/// refused, as Go's client refuses it, and never sent.
@Suite struct TokensThatCannotBeSent {
    /// Tokens as a token server's JSON spells them: CR LF and a header, a
    /// bare LF, a bare CR, a NUL (which C would cut the line at), DEL, and
    /// a whole second request.
    static let tokens = [
        #"abc\r\nX-Injected: yes"#, #"abc\nX-Injected: yes"#, #"abc\rX-Injected: yes"#, #"abc\u0000X-Injected"#,
        #"abc\u007f"#, #"abc\r\n\r\nGET /v2/app/manifests/smuggled HTTP/1.1\r\nHost: x\r\nX-Injected: yes"#,
    ]

    /// A client with no credentials (a token server gives anonymous tokens).
    private static func anonymousClient() -> RegistryClient {
        var configuration = RegistryClient.Configuration()
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": "/nonexistent"])
        configuration.transport.retries = 0
        return RegistryClient(configuration: configuration, logger: .disabled)
    }

    @Test(arguments: tokens) func aTokenHoldingAControlCharacterIsRefusedAndNeverSent(_ token: String) async throws {
        let tokenServer = try TestHTTPServer { _ in
            .response(status: 200, headers: [], body: Array(#"{"token":"\#(token)"}"#.utf8))
        }
        let registryRequests = Locked<[TestHTTPRequest]>([])
        let registry = try TestHTTPServer { request in
            registryRequests.withLock { $0.append(request) }
            return .response(
                status: 401,
                headers: [("WWW-Authenticate", #"Bearer realm="\#(tokenServer.baseURL)/token",service="r""#)],
                body: [])
        }
        defer { tokenServer.stop(); registry.stop() }
        let client = Self.anonymousClient()
        let host = "127.0.0.1:\(registry.port)"

        let error = await #expect(throws: RegistryError.self) {
            _ = try await client.fetchManifest(try ImageReference.parse("\(host)/app:v1"))
        }
        #expect(error?.reason == .unauthorized)
        #expect(error?.message.contains("control character") == true, "\(String(describing: error))")
        // Only the request the registry challenged: no request carried the
        // token, and none was smuggled after it.
        let seen = registryRequests.withLock { $0 }
        #expect(seen.count == 1)
        #expect(seen.allSatisfy { $0.headers["authorization"] == nil && $0.headers["x-injected"] == nil })
    }

    @Test func aPrintableTokenIsSent() async throws {
        let token = "eyJhbGciOi.J9-_~+/=. x"
        let tokenServer = try TestHTTPServer { _ in
            .response(status: 200, headers: [], body: Array(#"{"token":"\#(token)"}"#.utf8))
        }
        let registry = try bearerRegistry(token: token, realm: tokenServer.baseURL + "/token")
        defer { tokenServer.stop(); registry.stop() }
        let client = Self.anonymousClient()
        let fetched = try await client.fetchManifest(try ImageReference.parse("127.0.0.1:\(registry.port)/app:v1"))
        #expect(fetched.bytes == bearerRegistryManifest)
    }
}

/// A token server that does not take the OAuth2 refresh-token grant (404
/// to the POST) is asked with the GET every token server answers, as
/// go-containerregistry asks it.
@Suite struct IdentityTokenFallback {
    @Test func aTokenServerWithoutTheGrantIsAskedWithAGet() async throws {
        let tokenRequests = Locked<[TestHTTPRequest]>([])
        let tokenServer = try TestHTTPServer { request in
            tokenRequests.withLock { $0.append(request) }
            guard request.method == "GET" else { return .response(status: 404, headers: [], body: []) }
            return .response(status: 200, headers: [], body: Array(#"{"token":"from-get"}"#.utf8))
        }
        let registry = try bearerRegistry(token: "from-get", realm: tokenServer.baseURL + "/token")
        defer { tokenServer.stop(); registry.stop() }
        let host = "127.0.0.1:\(registry.port)"
        let (client, dir) = try client(for: host, entry: #"{"auth":"\#(basicAuth)","identitytoken":"refresh-me"}"#)
        defer { try? FileManager.default.removeItem(at: dir) }

        let fetched = try await client.fetchManifest(try ImageReference.parse("\(host)/app:v1"))
        #expect(fetched.bytes == bearerRegistryManifest)
        let asked = tokenRequests.withLock { $0 }
        #expect(asked.map(\.method) == ["POST", "GET"])
        #expect(asked.first?.form["refresh_token"] == "refresh-me")
        #expect(asked.last?.query["scope"] == "repository:app:pull")
        #expect(asked.last?.headers["authorization"] == "Basic \(basicAuth)")
    }
}

@Suite struct TokenCacheBound {
    @Test func theTokenCacheKeepsUnderItsBoundDroppingExpiredThenSoonest() {
        var tokens: [String: Authenticator.CachedToken] = [:]
        let now = ContinuousClock.now
        for i in 0..<10 {
            tokens["t\(i)"] = Authenticator.CachedToken(value: "v", expires: now + .seconds(i - 3))
        }
        Authenticator.makeRoom(in: &tokens, limit: 10)
        // The expired ones (t0...t3) went.
        #expect(Set(tokens.keys) == Set((4..<10).map { "t\($0)" }))
        Authenticator.makeRoom(in: &tokens, limit: 4)
        #expect(Set(tokens.keys) == ["t7", "t8", "t9"])
    }
}

@Suite struct DownloadDirectorySweep {
    /// A crashed server's download directory is removed by the next one;
    /// a live process's is kept.
    @Test func staleDirectoriesOfDeadProcessesAreRemoved() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: parent) }
        // A pid above the kernel's maximum is never alive.
        let dead = parent.appendingPathComponent("ocirpc-4194999-abcdef")
        let alive = parent.appendingPathComponent("ocirpc-1-abcdef")
        let unrelated = parent.appendingPathComponent("ocirpc-notes")
        // Names of other kinds, though a dead pid's digits are in them.
        let others = ["ocirpc-4194999-abc-def", "ocirpc-4194999-", "ocirpc--4194999-abc", "xocirpc-4194999-abc"].map {
            parent.appendingPathComponent($0)
        }
        for dir in [dead, alive, unrelated] + others {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        try Data("private".utf8).write(to: dead.appendingPathComponent("blob-1"))
        DownloadDirectory.sweepStale(in: parent.path)
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(FileManager.default.fileExists(atPath: alive.path))
        #expect(FileManager.default.fileExists(atPath: unrelated.path))
        for other in others {
            #expect(FileManager.default.fileExists(atPath: other.path), "\(other.lastPathComponent)")
        }
    }

    /// A directory of thousands of entries, names of every length: each
    /// name is read where it lies, never past the entry's end (under the
    /// address sanitizer, copying whole `dirent`s was caught here).
    @Test func aCrowdedDirectoryIsSweptWithoutReadingPastItsEntries() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: parent) }
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        for index in 0..<3000 {
            let name = String(repeating: "n", count: 1 + index % 40) + "\(index)"
            _ = FileManager.default.createFile(atPath: parent.appendingPathComponent(name).path, contents: nil)
        }
        let dead = parent.appendingPathComponent("ocirpc-4194999-zzzzzz")
        try FileManager.default.createDirectory(at: dead, withIntermediateDirectories: true)
        DownloadDirectory.sweepStale(in: parent.path)
        #expect(!FileManager.default.fileExists(atPath: dead.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path).count == 3000)
    }

    /// The pid is read from the name's bytes, refused past `Int32`.
    @Test func aDirectorysPidIsReadFromItsName() {
        func candidate(_ name: String) -> Int32? {
            Array(name.utf8).withUnsafeBufferPointer { DownloadDirectory.staleCandidate($0[...])?.pid }
        }
        #expect(candidate("ocirpc-123-AbC9z") == 123)
        #expect(candidate("ocirpc-2147483647-x") == Int32.max)
        #expect(candidate("ocirpc-2147483648-x") == nil)
        #expect(candidate("ocirpc-12a-x") == nil)
        #expect(candidate("ocirpc-source-0C1F") == nil)
        #expect(candidate("ocirpc-123") == nil)
    }
}
