import Foundation
import JSON
import Locking
import Testing
import TestFixtures

/// Proxies from the environment, as curl reads them, through the binary.
/// The registry's name does not resolve: only a proxy can answer for it.
@Suite struct ProxyEnvironmentTests {
    private static let registry = "proxied.invalid"
    private static let ref = "\(registry)/app@sha256:" + String(repeating: "ab", count: 32)

    /// A forward proxy that answers every request itself, and the targets it was asked for.
    private static func proxy() throws -> (TestHTTPServer, Locked<[String]>) {
        let targets = Locked<[String]>([])
        let body = Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"answered by the proxy"}]}"#.utf8)
        let server = try TestHTTPServer { request in
            targets.withLock { $0.append(request.target) }
            return .response(
                status: 404, headers: [("Content-Type", "application/json"), ("Content-Length", String(body.count))],
                body: body)
        }
        return (server, targets)
    }

    private func manifestError(environment: [String: String]) async throws -> JSONValue? {
        let session = try RPCSession(
            ["--insecure-registry", Self.registry, "--retries", "0"], environment: environment)
        defer { Task { await session.close() } }
        return try await session.call("ec.oci.image_manifest", [.string(Self.ref)])["error"]
    }

    @Test(arguments: ["http_proxy", "ALL_PROXY"])
    func aProxyInTheEnvironmentCarriesTheRequests(variable: String) async throws {
        let (proxy, targets) = try Self.proxy()
        defer { proxy.stop() }
        let error = try await manifestError(environment: [variable: proxy.baseURL])
        #expect(error?["data"]?["reason"] == "manifest_unknown", "\(String(describing: error))")
        #expect(error?["message"]?.stringValue?.contains("answered by the proxy") == true)
        // The absolute form a forward proxy is asked with.
        #expect(targets.withLock { $0 }.contains { $0.hasPrefix("http://\(Self.registry)/v2/app/manifests/") })
    }

    @Test func noProxyKeepsARegistryOffTheProxy() async throws {
        let (proxy, targets) = try Self.proxy()
        defer { proxy.stop() }
        let error = try await manifestError(environment: ["http_proxy": proxy.baseURL, "NO_PROXY": Self.registry])
        #expect(error?["data"]?["reason"] == "connection_failed", "\(String(describing: error))")
        #expect(targets.withLock { $0 }.isEmpty)
    }
}
