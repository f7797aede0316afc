import Foundation
import JSON
import Testing
import TestFixtures

@Suite(.serialized, .needsDockerRegistry) struct MirrorTests {
    /// An upstream registry and a mirror, each behind a counting proxy,
    /// both holding `app:v1`.
    struct Pair {
        let upstream: TestRegistry, mirror: TestRegistry
        let upstreamProxy: RegistryProxy, mirrorProxy: RegistryProxy
        let image: (manifest: Data, digest: String)

        init() async throws {
            upstream = try await TestRegistry()
            mirror = try await TestRegistry()
            upstreamProxy = try RegistryProxy(upstream: upstream.host)
            mirrorProxy = try RegistryProxy(upstream: mirror.host)
            image = try await upstream.pushMinimalImage("app", "v1")
            try await mirror.pushMinimalImage("app", "v1")
        }

        func stop() { upstream.stop(); mirror.stop(); upstreamProxy.stop(); mirrorProxy.stop() }
    }

    /// A registries.conf with `text`, in a new temporary file (the caller removes it).
    static func registriesConf(_ text: String) throws -> URL {
        let conf = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-registries-\(UUID().uuidString).conf")
        try text.write(to: conf, atomically: true, encoding: .utf8)
        return conf
    }

    @Test func mirrorsAreTriedFirstAndTheRegistryServesWhatTheyLack() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (upstream, upstreamProxy, mirrorProxy, image) = (
            pair.upstream, pair.upstreamProxy, pair.mirrorProxy, pair.image
        )
        try await upstream.pushMinimalImage("only-upstream", "v1")
        let session = try RPCSession(["--mirror", "\(upstreamProxy.host)=\(mirrorProxy.host)"])
        let cached = try await session.result("ec.oci.descriptor", [.string("\(upstreamProxy.host)/app:v1")])
        #expect(cached["digest"] == .string(image.digest))
        #expect(mirrorProxy.count("manifest") == 1)
        #expect(upstreamProxy.count("manifest") == 0)
        let fallback = try await session.result(
            "ec.oci.image_manifest", [.string("\(upstreamProxy.host)/only-upstream:v1")])
        #expect(fallback["schemaVersion"] == 2)
        #expect(mirrorProxy.count("manifest") == 2, "the mirror was asked first")
        #expect(upstreamProxy.count("manifest") == 1)
        await session.close()
    }

    @Test func mirrorsComeFromARegistriesConfToo() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (upstreamProxy, mirrorProxy, image) = (pair.upstreamProxy, pair.mirrorProxy, pair.image)
        let conf = try Self.registriesConf(
            """
            unqualified-search-registries = ["docker.io"]
            [[registry]]
            location = "\(upstreamProxy.host)"
            [[registry.mirror]]
            location = "\(mirrorProxy.host)"
            """)
        defer { try? FileManager.default.removeItem(at: conf) }
        let session = try RPCSession(["--registries-conf", conf.path])
        let descriptor = try await session.result("ec.oci.descriptor", [.string("\(upstreamProxy.host)/app:v1")])
        #expect(descriptor["digest"] == .string(image.digest))
        #expect(mirrorProxy.count("manifest") == 1)
        #expect(upstreamProxy.count("manifest") == 0)
        await session.close()
    }

    @Test func aDigestOnlyMirrorServesDigestsButNeverTags() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (upstreamProxy, mirrorProxy, image) = (pair.upstreamProxy, pair.mirrorProxy, pair.image)
        let conf = try Self.registriesConf(
            """
            [[registry]]
            location = "\(upstreamProxy.host)"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "\(mirrorProxy.host)"
            """)
        defer { try? FileManager.default.removeItem(at: conf) }
        let session = try RPCSession(["--registries-conf", conf.path])
        _ = try await session.result("ec.oci.descriptor", [.string("\(upstreamProxy.host)/app:v1")])
        #expect(mirrorProxy.count("manifest") == 0, "a tag never goes to a digest-only mirror")
        #expect(upstreamProxy.count("manifest") == 1)
        _ = try await session.result("ec.oci.image_manifest", [.string("\(upstreamProxy.host)/app@\(image.digest)")])
        #expect(mirrorProxy.count("manifest") == 1)
        await session.close()
    }

    @Test func aBlockedRegistryIsRefused() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let upstreamProxy = pair.upstreamProxy
        let conf = try Self.registriesConf("[[registry]]\nlocation = \"\(upstreamProxy.host)\"\nblocked = true\n")
        defer { try? FileManager.default.removeItem(at: conf) }
        let session = try RPCSession(["--registries-conf", conf.path])
        for method in ["ec.oci.descriptor", "ec.oci.image_manifest", "ec.oci.image_referrers"] {
            let answer = try await session.call(method, [.string("\(upstreamProxy.host)/app@\(pair.image.digest)")])
            #expect(answer.errorReason == "blocked", "\(method): \(answer.jsonText)")
            #expect(answer.errorCode == -32002)
        }
        #expect(upstreamProxy.count("manifest") == 0)
        await session.close()
    }
}
