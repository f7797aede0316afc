import Foundation
import JSON
import Testing
import TestFixtures

/// `--ca-file`, `SSL_CERT_FILE` and `--secure-registry` through the binary.
@Suite(.serialized, .needsDockerRegistry) struct TLSServerTests {
    @Test func theBinaryTrustsTheCAFileItIsGiven() async throws {
        let (registry, twin, image) = try await TLSRegistryTwin.withMinimalImage()
        defer { registry.stop(); twin.stop() }
        let session = try RPCSession(["--secure-registry", twin.host, "--ca-file", twin.caFile, "--retries", "0"])
        let descriptor = try await session.result("ec.oci.descriptor", [.string("\(twin.host)/app:v1")])
        #expect(descriptor["digest"] == .string(image.digest))
        await session.close()
    }

    @Test func sslCertFileIsHonouredAndWithoutItTheCertificateIsRefused() async throws {
        let (registry, twin, _) = try await TLSRegistryTwin.withMinimalImage()
        defer { registry.stop(); twin.stop() }
        let trusted = try RPCSession(
            ["--secure-registry", twin.host, "--retries", "0"],
            environment: ["SSL_CERT_FILE": twin.caFile])
        let manifest = try await trusted.result("ec.oci.image_manifest", [.string("\(twin.host)/app:v1")])
        #expect(manifest["schemaVersion"] == 2)
        await trusted.close()

        let untrusted = try RPCSession(
            ["--secure-registry", twin.host, "--retries", "0"], environment: ["SSL_CERT_FILE": ""])
        let response = try await untrusted.call("ec.oci.image_manifest", [.string("\(twin.host)/app:v1")])
        #expect(response["error"]?["code"] == -32004, "\(response)")
        #expect(response["error"]?["data"]?["reason"] == "tls", "\(response)")
        await untrusted.close()
    }

    @Test func overTLSConcurrentRequestsShareOneHTTP2Connection() async throws {
        let (registry, twin, _) = try await TLSRegistryTwin.withMinimalImage()
        defer { registry.stop(); twin.stop() }
        var refs: [JSONValue] = []
        for number in 0..<40 {
            _ = try await registry.pushMinimalImage("app", "t\(number)", annotations: #"{"n":"\#(number)"}"#)
            refs.append(.string("\(twin.host)/app:t\(number)"))
        }
        let session = try RPCSession(
            ["--secure-registry", twin.host, "--ca-file", twin.caFile, "--retries", "0", "--max-concurrency", "8"])
        let manifests = try await session.result("ec.oci.image_manifests", [.array(refs)])
        #expect(manifests.objectValue?.count == 40)
        let stats = try await session.result("server.stats", [])
        #expect(stats["registryRequests"]?["manifest"] == 40, "\(stats)")
        // Eight at a time, on one connection (the registry speaks HTTP/2).
        #expect(stats["registryConnections"] == 1, "\(stats)")
        await session.close()
    }
}
