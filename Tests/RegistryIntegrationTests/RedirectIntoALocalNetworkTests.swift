import Foundation
import Testing
import TestFixtures
@testable import Registry

/// A registry on the public internet may not send the server's requests
/// into a local network (cloud metadata, internal services), by a redirect
/// or by naming its token realm there; one inside a local network may. The tests' servers are all on
/// loopback: 127.0.0.1 stands for the registry, 127.0.0.2 for another
/// host, and `publicAddresses` says which of them count as public.
@Suite struct RedirectIntoALocalNetworkTests {
    static let manifest = Array(
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.utf8)
    static let blob = Array("a blob behind a redirect".utf8)

    /// A registry on 127.0.0.1 whose every manifest and blob request is
    /// redirected to the same path on `target`.
    static func redirecting(to target: TestHTTPServer) throws -> TestHTTPServer {
        try TestHTTPServer { request in
            guard request.path != "/v2/" else { return .response(status: 200, headers: [], body: []) }
            return .response(status: 307, headers: [("Location", target.baseURL + request.target)], body: [])
        }
    }

    /// Requests a server has read.
    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var requests = 0
        var count: Int { lock.withLock { requests } }
        func add() { lock.withLock { requests += 1 } }
    }

    /// The host that serves what the registry redirects to, and what it read.
    static func target() throws -> (TestHTTPServer, Seen) {
        let seen = Seen()
        let server = try TestHTTPServer(address: "127.0.0.2") { request in
            seen.add()
            let isBlob = request.path.contains("/blobs/")
            return .response(
                status: 200,
                headers: [("Content-Type", isBlob ? "application/octet-stream" : ManifestMediaType.ociManifest)],
                body: isBlob ? blob : manifest)
        }
        return (server, seen)
    }

    /// The host behind a redirect (127.0.0.2), what it has read, and the
    /// registry (127.0.0.1) that redirects every request to it.
    static func redirect() throws -> (target: TestHTTPServer, seen: Seen, registry: TestHTTPServer) {
        let (target, seen) = try target()
        do {
            return (target, seen, try redirecting(to: target))
        } catch {
            target.stop()
            throw error
        }
    }

    static func client(publicAddresses: Set<String>, allowing registries: Set<String> = []) -> RegistryClient {
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = 0
        configuration.transport.publicAddresses = publicAddresses
        configuration.localNetworkRegistries = registries
        return RegistryClient(configuration: configuration, logger: .disabled)
    }

    /// Fetches a manifest by tag, or a blob by digest, from `registry`.
    static func fetch(_ what: String, from registry: TestHTTPServer, with client: RegistryClient) async throws {
        let host = "127.0.0.1:\(registry.port)"
        if what == "blob" {
            let digest = Digest.of(blob, algorithm: .sha256)
            let fetched = try await client.fetchBlob(ImageReference.parse("\(host)/app@\(digest)"))
            fetched.discard()
        } else {
            _ = try await client.fetchManifest(ImageReference.parse("\(host)/app:v1"))
        }
    }

    @Test(arguments: ["manifest", "blob"])
    func aPublicRegistryCannotRedirectIntoALocalNetwork(what: String) async throws {
        let (target, seen, registry) = try Self.redirect()
        defer {
            registry.stop()
            target.stop()
        }
        let client = Self.client(publicAddresses: ["127.0.0.1"])
        await #expect {
            try await Self.fetch(what, from: registry, with: client)
        } throws: { error in
            let error = error as? RegistryError
            return error?.reason == .localAddressRefused && error?.kind == .accessDenied
                && error?.message.contains("127.0.0.2") == true
        }
        // Refused before the connection was made.
        #expect(seen.count == 0)
        #expect(target.connectionsAccepted == 0)
    }

    /// A redirect is followed where the registry is itself in a local
    /// network, where both addresses are public, and where the user allows
    /// the registry (`--allow-local-redirects`).
    @Test(
        arguments: [
            ("manifest", [], false), ("blob", [], false), ("manifest", ["127.0.0.1", "127.0.0.2"], false),
            ("manifest", ["127.0.0.1"], true),
        ] as [(String, Set<String>, Bool)])
    func aRedirectIsFollowedWhereAllowed(what: String, publicAddresses: Set<String>, allowed: Bool) async throws {
        let (target, seen, registry) = try Self.redirect()
        defer {
            registry.stop()
            target.stop()
        }
        let client = Self.client(
            publicAddresses: publicAddresses, allowing: allowed ? ["127.0.0.1:\(registry.port)"] : [])
        try await Self.fetch(what, from: registry, with: client)
        #expect(seen.count == 1)
    }

    /// A registry on 127.0.0.1 whose every request is challenged for a
    /// bearer token from a realm on 127.0.0.2, whose requests `seen` counts.
    static func challenging() throws -> (registry: TestHTTPServer, realm: TestHTTPServer, seen: Seen) {
        let seen = Seen()
        let realm = try TestHTTPServer(address: "127.0.0.2") { _ in
            seen.add()
            return .response(status: 200, headers: [], body: Array(#"{"token":"t"}"#.utf8))
        }
        let registry = try TestHTTPServer { _ in
            .response(
                status: 401, headers: [("WWW-Authenticate", #"Bearer realm="\#(realm.baseURL)/token""#)], body: [])
        }
        return (registry, realm, seen)
    }

    @Test func aPublicRegistryCannotNameATokenRealmInALocalNetwork() async throws {
        let (registry, realm, seen) = try Self.challenging()
        defer {
            registry.stop()
            realm.stop()
        }
        let client = Self.client(publicAddresses: ["127.0.0.1"])
        await #expect {
            try await Self.fetch("manifest", from: registry, with: client)
        } throws: { error in
            (error as? RegistryError)?.reason == .localAddressRefused
        }
        #expect(seen.count == 0)
        #expect(realm.connectionsAccepted == 0)
    }

    /// A realm in a local network is asked where the registry is in one
    /// too, or where the user allows it (`--allow-local-redirects`).
    @Test(arguments: [false, true])
    func aRealmInALocalNetworkIsAskedWhereAllowed(registryIsPublicButAllowed: Bool) async throws {
        let (registry, realm, seen) = try Self.challenging()
        defer {
            registry.stop()
            realm.stop()
        }
        let client =
            registryIsPublicButAllowed
            ? Self.client(publicAddresses: ["127.0.0.1"], allowing: ["127.0.0.1:\(registry.port)"])
            : Self.client(publicAddresses: [])
        // The registry answers 401 whatever the token: only the realm's visit counts here.
        _ = try? await Self.fetch("manifest", from: registry, with: client)
        #expect(seen.count >= 1)
    }

    /// A connection kept from an earlier request to the local host is not
    /// opened again: the request that would go on it is refused instead.
    @Test func aKeptConnectionIntoALocalNetworkIsRefusedToo() async throws {
        let (target, seen, registry) = try Self.redirect()
        defer {
            registry.stop()
            target.stop()
        }
        let client = Self.client(publicAddresses: ["127.0.0.1"])
        // The local host as a registry of its own: allowed, and its connection kept.
        _ = try await client.fetchManifest(ImageReference.parse("127.0.0.2:\(target.port)/app:v1"))
        #expect(seen.count == 1)
        await #expect {
            try await Self.fetch("manifest", from: registry, with: client)
        } throws: { error in
            (error as? RegistryError)?.reason == .localAddressRefused
        }
        #expect(seen.count == 1)
        #expect(target.connectionsAccepted == 1)
    }
}
