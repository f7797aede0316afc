import Reasons
import Foundation
import Logging
import Synchronization
import Testing
import TestFixtures
@testable import Registry

/// Faults a real registry cannot produce, injected by a proxy in front of one.
@Suite(.serialized, .needsDockerRegistry) struct FaultInjection {
    private func client(retries: Int = 3, timeout: Double = 30) -> RegistryClient {
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = retries
        configuration.transport.timeout = timeout
        configuration.transport.baseBackoff = 0.01
        return RegistryClient(configuration: configuration, logger: .disabled)
    }

    private func setUp() async throws -> (TestRegistry, RegistryProxy, String) {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        let image = try await registry.pushMinimalImage("app", "v1")
        return (registry, proxy, image.digest)
    }

    /// A rule that injects `fault` into the first `times` requests of `kind`.
    private func first(_ times: Int, _ kind: String, _ fault: ProxyFault) -> @Sendable (TestHTTPRequest) -> ProxyFault?
    {
        let seen = Atomic<Int>(0)
        return { request in
            guard RegistryProxy.kind(of: request.path) == kind else { return nil }
            return seen.add(1, ordering: .relaxed).newValue <= times ? fault : nil
        }
    }

    @Test func aResetConnectionIsRetried() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        proxy.inject(first(1, "manifest", .reset))
        let client = client()
        let fetched = try await client.fetchManifest(ImageReference.parse("\(proxy.host)/app:v1"))
        #expect(fetched.bytes.count > 0)
        #expect(proxy.count("manifest") == 2)
        #expect(client.counters.snapshot["retries"] == 1)
    }

    @Test func a429WithRetryAfterIsWaitedForThenRetried() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        proxy.inject(first(2, "manifest", .status(429, retryAfter: "1")))
        let start = Date()
        _ = try await client().fetchManifest(ImageReference.parse("\(proxy.host)/app:v1"))
        #expect(Date().timeIntervalSince(start) >= 1.9, "Retry-After: 1 honoured twice")
        #expect(proxy.count("manifest") == 3)
    }

    @Test func a503ThenSuccessSucceeds() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        proxy.inject(first(1, "manifest", .status(503)))
        _ = try await client().fetchManifest(ImageReference.parse("\(proxy.host)/app:v1"))
        #expect(proxy.count("manifest") == 2)
    }

    @Test func persistent503IsAServerErrorAfterTheRetries() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        proxy.inject { _ in .status(503) }
        let error = await registryError {
            _ = try await client(retries: 2).fetchManifest(ImageReference.parse("\(proxy.host)/app:v1"))
        }
        #expect(error?.kind == .unavailable)
        #expect(error?.reason == .serverError)
        #expect(error?.httpStatus == 503)
        #expect(proxy.count("manifest") == 3)
    }

    @Test func aCorruptedManifestIsADigestMismatch() async throws {
        let (registry, proxy, digest) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        proxy.inject { RegistryProxy.kind(of: $0.path) == "manifest" ? .corrupt : nil }
        for ref in ["\(proxy.host)/app:v1", "\(proxy.host)/app@\(digest)"] {
            let error = await registryError { _ = try await client().fetchManifest(ImageReference.parse(ref)) }
            #expect(error?.reason == .digestMismatch, "\(ref)")
        }
    }

    @Test func corruptedAndTruncatedBlobsAreRefusedAndLeaveNoFile() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        let blob = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let digest = try await registry.pushBlob("app", blob)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-dl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ref = try ImageReference.parse("\(proxy.host)/app@\(digest)")
        proxy.inject { RegistryProxy.kind(of: $0.path) == "blob" ? .corrupt : nil }
        let corrupted = await registryError { _ = try await client().fetchBlob(ref, directory: directory) }
        #expect(corrupted?.reason == .digestMismatch)
        proxy.inject { RegistryProxy.kind(of: $0.path) == "blob" ? .truncate : nil }
        let truncated = await registryError { _ = try await client(retries: 0).fetchBlob(ref, directory: directory) }
        #expect(
            [.digestMismatch, .sizeMismatch, .connectionFailed].contains(truncated?.reason),
            "\(String(describing: truncated))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        proxy.inject { _ in nil }
        let good = try await client().fetchBlob(ref, directory: directory)
        #expect(try good.contents() == blob)
        good.discard()
    }

    @Test func slowResponsesPastTheTimeoutAreTimeouts() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        proxy.inject { RegistryProxy.kind(of: $0.path) == "manifest" ? .delay(3) : nil }
        // A timeout, not the answer that comes after 3 s: no clock is read.
        let error = await registryError {
            _ = try await client(retries: 0, timeout: 1).fetchManifest(ImageReference.parse("\(proxy.host)/app:v1"))
        }
        #expect(error?.reason == .timeout)
        #expect(error?.kind == .unavailable)
    }

    @Test func aRedirectToAnotherProtocolIsNotFollowed() async throws {
        let (registry, proxy, _) = try await setUp()
        defer { registry.stop(); proxy.stop() }
        let listener = try TestHTTPServer { _ in .response(status: 200, headers: [], body: []) }
        defer { listener.stop() }
        proxy.inject {
            RegistryProxy.kind(of: $0.path) == "manifest" ? .redirect("ftp://127.0.0.1:\(listener.port)/x") : nil
        }
        let error = await registryError {
            _ = try await client(retries: 0).fetchManifest(ImageReference.parse("\(proxy.host)/app:v1"))
        }
        #expect(error?.reason == .connectionFailed)
        // Refused by libcurl at once: followed, the FTP client would wait for a greeting until the timeout.
        #expect(error?.message.lowercased().contains("unsupported protocol") == true, "\(String(describing: error))")
    }

    @Test func aCrossHostRedirectDropsTheAuthorizationHeader() async throws {
        // The registry behind the proxy wants basic auth; the blob request is
        // redirected to a second host (another proxy on a different address
        // name), which must not see the credentials.
        let registry = try await TestRegistry(auth: .basic(user: "carol", password: "redirect-pw"))
        defer { registry.stop() }
        let digest = try await registry.pushBlob("app", Data("redirected blob".utf8))
        let target = try RegistryProxy(upstream: registry.host)
        defer { target.stop() }
        let front = try RegistryProxy(upstream: registry.host)
        defer { front.stop() }
        // "localhost" is another host than "127.0.0.1" as far as HTTP is concerned.
        let location = "http://localhost:\(target.host.split(separator: ":").last!)/v2/app/blobs/\(digest)"
        front.inject {
            RegistryProxy.kind(of: $0.path) == "blob" && $0.headers["authorization"] != nil ? .redirect(location) : nil
        }
        target.inject { _ in .status(200) }
        let dir = try DockerConfigDirectory.make(host: front.host, user: "carol", password: "redirect-pw")
        defer { try? FileManager.default.removeItem(at: dir) }
        var configuration = RegistryClient.Configuration()
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path])
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        _ = try? await client.fetchBlob(ImageReference.parse("\(front.host)/app@\(digest)"))
        let redirected = target.seen.filter { $0.path.contains("/blobs/") }
        #expect(!redirected.isEmpty, "the redirect was followed")
        #expect(redirected.allSatisfy { $0.headers["authorization"] == nil })
        #expect(front.seen.contains { $0.headers["authorization"] != nil }, "the first host did get credentials")
    }
}
