import Foundation
import JSON
import Testing
import TestFixtures

@Suite(.serialized) struct MirrorTests {
    @Test func mirrorsAreTriedFirstAndTheRegistryServesWhatTheyLack() async throws {
        let upstream = try await TestRegistry()
        let mirror = try await TestRegistry()
        let upstreamProxy = try RegistryProxy(upstream: upstream.host)
        let mirrorProxy = try RegistryProxy(upstream: mirror.host)
        defer { upstream.stop(); mirror.stop(); upstreamProxy.stop(); mirrorProxy.stop() }
        let image = try await upstream.pushMinimalImage("app", "v1")
        try await mirror.pushMinimalImage("app", "v1")
        try await upstream.pushMinimalImage("only-upstream", "v1")
        let session = try RPCSession(["--mirror", "\(upstreamProxy.host)=\(mirrorProxy.host)"])
        let cached = try await session.result("ec.oci.descriptor", [.string("\(upstreamProxy.host)/app:v1")])
        #expect(cached["digest"] == .string(image.digest))
        #expect(mirrorProxy.count("manifest") == 1)
        #expect(upstreamProxy.count("manifest") == 0)
        let fallback = try await session.result("ec.oci.image_manifest", [.string("\(upstreamProxy.host)/only-upstream:v1")])
        #expect(fallback["schemaVersion"] == 2)
        #expect(mirrorProxy.count("manifest") == 2, "the mirror was asked first")
        #expect(upstreamProxy.count("manifest") == 1)
        await session.close()
    }
}
