import Foundation
import Logging
import Testing
import TestFixtures
@testable import Registry

/// Bearer tokens from a token server, against distribution's token auth.
@Suite(.serialized, .needsDockerRegistry) struct TokenAuthAgainstARealRegistry {
    private func client(for registry: TestRegistry, user: String, password: String) throws -> (RegistryClient, URL) {
        let auth = Data("\(user):\(password)".utf8).base64EncodedString()
        return try client(dockerConfigEntry: #"{"auth":"\#(auth)"}"#, for: registry)
    }

    /// A client whose docker config holds `entry` for `registry`; the
    /// config's folder is the caller's to delete.
    private func client(dockerConfigEntry entry: String, for registry: TestRegistry) throws -> (RegistryClient, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-docker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(#"{"auths":{"\#(registry.host)":\#(entry)}}"#.utf8).write(
            to: dir.appendingPathComponent("config.json"))
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = 0
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path])
        return (RegistryClient(configuration: configuration, logger: .disabled), dir)
    }

    /// Fetches the manifest `reference` names `count` times at once.
    private func fetchConcurrently(_ count: Int, _ reference: String, with client: RegistryClient) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask { _ = try await client.fetchManifest(ImageReference.parse(reference)) }
            }
            try await group.waitForAll()
        }
    }

    @Test func tokensAreFetchedOncePerScopeAndReused() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        let a = try await registry.pushMinimalImage("team/a", "v1")
        try await registry.pushMinimalImage("team/b", "v1")
        let (client, dir) = try client(for: registry, user: "bob", password: "tok-pass")
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = issuer.requests
        for _ in 0..<3 {
            let fetched = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/a:v1"))
            #expect(fetched.digest.description == a.digest)
        }
        _ = try await client.headManifest(ImageReference.parse("\(registry.host)/team/a@\(a.digest)"))
        #expect(issuer.requests - before == 1, "one token for repository:team/a:pull")
        _ = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/b:v1"))
        #expect(issuer.requests - before == 2, "a second scope needs a second token")
        // 1 challenge + 3 GETs + 1 HEAD for team/a, 1 GET for team/b: the challenge is learnt once.
        #expect(client.counters.snapshot["manifest"] == 6)
        #expect(client.counters.snapshot["token"] == 2)
    }

    @Test func concurrentFirstRequestsShareOneTokenRequest() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        try await registry.pushMinimalImage("team/c", "v1")
        let (client, dir) = try client(for: registry, user: "bob", password: "tok-pass")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Learn the challenge first, then race twenty fetches for a new scope.
        _ = try? await client.fetchManifest(ImageReference.parse("\(registry.host)/team/c:v1"))
        try await registry.pushMinimalImage("team/d", "v1")
        let before = issuer.requests
        try await fetchConcurrently(20, "\(registry.host)/team/d:v1", with: client)
        #expect(issuer.requests - before == 1)
    }

    @Test func aNewClientsConcurrentFirstRequestsFetchOneToken() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        try await registry.pushMinimalImage("team/e", "v1")
        let (client, dir) = try client(for: registry, user: "bob", password: "tok-pass")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Every request goes out before the challenge is known and meets it;
        // those answered after the token came retry with it.
        let before = issuer.requests
        try await fetchConcurrently(20, "\(registry.host)/team/e:v1", with: client)
        #expect(issuer.requests - before == 1)
    }

    @Test func anIdentityTokenIsExchangedThroughTheRefreshTokenGrant() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        issuer.addIdentityToken("refresh-7f3a", for: "bob")
        let image = try await registry.pushMinimalImage("team/f", "v1")
        let (client, dir) = try client(dockerConfigEntry: #"{"auth":"","identitytoken":"refresh-7f3a"}"#, for: registry)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fetched = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/f:v1"))
        #expect(fetched.digest.description == image.digest)
        #expect(issuer.refreshGrants == 1)
    }

    /// An identity token in standard base64 (`+`, `/`, `=`), and one with
    /// every character a form must escape, reach the token server as they
    /// are: a `+` sent as it was read as a space there.
    @Test(arguments: ["rT3+kq/Zw9+ab==", "a b&c=d%e+f?g#h;i,j\u{E9}"])
    func anIdentityTokenReachesTheTokenServerAsItIs(_ identityToken: String) async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        issuer.addIdentityToken(identityToken, for: "bob")
        let image = try await registry.pushMinimalImage("team/h", "v1")
        let entry = try String(
            decoding: JSONSerialization.data(withJSONObject: ["identitytoken": identityToken]), as: UTF8.self)
        let (client, dir) = try client(dockerConfigEntry: entry, for: registry)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fetched = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/h:v1"))
        #expect(fetched.digest.description == image.digest)
        #expect(issuer.refreshGrants == 1)
    }

    /// A `registrytoken` in docker's config is the bearer token itself:
    /// sent when the registry challenges, with no token request.
    @Test func aRegistryTokenIsSentAsTheBearerTokenWithNoTokenRequest() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        let image = try await registry.pushMinimalImage("team/r", "v1")
        let token = try issuer.mint(subject: "bob", repository: "team/r", actions: ["pull"])
        let (client, dir) = try client(dockerConfigEntry: #"{"registrytoken":"\#(token)"}"#, for: registry)
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = issuer.requests
        let fetched = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/r:v1"))
        #expect(fetched.digest.description == image.digest)
        #expect(issuer.requests == before)
        // A registry token that does not grant the repository is refused by
        // the registry: access denied, still with no token request.
        try await registry.pushMinimalImage("team/s", "v1")
        await #expect(throws: RegistryError.self) {
            _ = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/s:v1"))
        }
        #expect(issuer.requests == before)
    }

    @Test func aRegistryTokenHoldingALineBreakIsNeverSent() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        try await registry.pushMinimalImage("team/t", "v1")
        let (client, dir) = try client(
            dockerConfigEntry: #"{"registrytoken":"abc\r\nX-Injected: yes"}"#, for: registry)
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = await #expect(throws: RegistryError.self) {
            _ = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/t:v1"))
        }
        #expect(error?.reason == .unauthorized)
        #expect(error?.message.contains("control character") == true, "\(String(describing: error))")
    }

    @Test func anUnknownIdentityTokenIsAccessDenied() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        try await registry.pushMinimalImage("team/g", "v1")
        let (client, dir) = try client(dockerConfigEntry: #"{"identitytoken":"revoked-token"}"#, for: registry)
        defer { try? FileManager.default.removeItem(at: dir) }
        var denied: RegistryError?
        do {
            _ = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/g:v1"))
        } catch {
            denied = error as? RegistryError
        }
        #expect(denied?.kind == .accessDenied)
        #expect(denied.map { !$0.message.contains("revoked-token") } == true)
        #expect(issuer.refreshGrants == 0)
    }

    @Test func wrongCredentialsAreAccessDeniedWithoutLeakingThem() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass"))
        defer { registry.stop() }
        try await registry.pushMinimalImage("team/e", "v1")
        let (client, dir) = try client(for: registry, user: "bob", password: "wrong-secret")
        defer { try? FileManager.default.removeItem(at: dir) }
        var denied: RegistryError?
        do {
            _ = try await client.fetchManifest(ImageReference.parse("\(registry.host)/team/e:v1"))
        } catch {
            denied = error as? RegistryError
        }
        #expect(denied?.kind == .accessDenied)
        #expect(denied.map { !$0.message.contains("wrong-secret") } == true)
    }

    /// containers-auth.json(5)'s namespaced entries, through the binary: a
    /// namespace's credentials buy tokens for its repositories; another
    /// repository gets the registry's own entry (wrong here), so it is
    /// refused, and it made no token request with the namespace's.
    @Test(arguments: ["token", "basic"])
    func aNamespacesCredentialsServeItsRepositoriesAndNoOthers(auth kind: String) async throws {
        let registry = try await TestRegistry(
            auth: kind == "token" ? .token(user: "bob", password: "ns-pass") : .basic(user: "bob", password: "ns-pass"))
        defer { registry.stop() }
        try await registry.pushMinimalImage("team/app", "v1", annotations: #"{"of":"team"}"#)
        try await registry.pushMinimalImage("teams/app", "v1")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-podman-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("containers"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let right = Data("bob:ns-pass".utf8).base64EncodedString()
        let wrong = Data("bob:not-this".utf8).base64EncodedString()
        try Data(
            #"{"auths":{"\#(registry.host)":{"auth":"\#(wrong)"},"\#(registry.host)/team":{"auth":"\#(right)"}}}"#.utf8
        ).write(to: dir.appendingPathComponent("containers/auth.json"))
        let session = try RPCSession(
            ["--cache-dir", "none"], environment: ["XDG_RUNTIME_DIR": dir.path, "HOME": dir.path])
        let team = try await session.call("ec.oci.image_manifest", [.string("\(registry.host)/team/app:v1")])
        let before = registry.tokenIssuer?.tokens.count
        let teams = try await session.call("ec.oci.image_manifest", [.string("\(registry.host)/teams/app:v1")])
        await session.close()
        #expect(team["result"]?["annotations"]?["of"] == "team", "\(team)")
        #expect(teams["error"]?["data"]?["reason"] == "unauthorized", "\(teams)")
        if let issuer = registry.tokenIssuer {
            #expect(issuer.tokens.count == before, "no token was issued for teams/app")
        }
    }

    @Test func theMethodsWorkThroughTheBinaryWithBearerAuthAndNothingLeaks() async throws {
        let registry = try await TestRegistry(auth: .token(user: "bob", password: "tok-pass-123"))
        defer { registry.stop() }
        let issuer = try #require(registry.tokenIssuer)
        let image = try await registry.pushMinimalImage("team/f", "v1")
        let dir = try DockerConfigDirectory.make(host: registry.host, user: "bob", password: "tok-pass-123")
        defer { try? FileManager.default.removeItem(at: dir) }
        // What config.json holds, which must not leak either.
        let auth = Data("bob:tok-pass-123".utf8).base64EncodedString()
        let session = try RPCSession(["--log-level", "debug"], environment: ["DOCKER_CONFIG": dir.path])
        let ref = "\(registry.host)/team/f:v1"
        #expect(try await session.result("ec.oci.image_manifest", [.string(ref)])["schemaVersion"] == 2)
        #expect(try await session.result("ec.oci.descriptor", [.string(ref)])["digest"] == .string(image.digest))
        #expect(try await session.result("ec.oci.image_tag_refs", [.string(ref)]) == [])
        let stats = try await session.result("server.stats", [])
        await session.close()
        let everything =
            String(decoding: session.process.stdout, as: UTF8.self) + session.process.stderr + stats.jsonText
        #expect(!issuer.tokens.isEmpty)
        for secret in ["tok-pass-123", auth] + issuer.tokens {
            #expect(!everything.contains(secret))
        }
        // Token signatures alone must not leak either.
        for token in issuer.tokens { #expect(!everything.contains(String(token.split(separator: ".").last ?? ""))) }
    }
}
