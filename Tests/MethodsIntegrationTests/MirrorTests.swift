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

    /// A mirror that holds the registry's names under a namespace of its
    /// own (a Harbor or Artifactory proxy project) is asked for them there.
    @Test func aMirrorUnderANamespaceIsAskedThere() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (upstreamProxy, mirrorProxy) = (pair.upstreamProxy, pair.mirrorProxy)
        let cached = try await pair.mirror.pushMinimalImage("proxy/hub/app", "v1", annotations: #"{"at":"mirror"}"#)
        let session = try RPCSession(["--mirror", "\(upstreamProxy.host)=\(mirrorProxy.host)/proxy/hub"])
        let descriptor = try await session.result("ec.oci.descriptor", [.string("\(upstreamProxy.host)/app:v1")])
        #expect(descriptor["digest"] == .string(cached.digest))
        #expect(upstreamProxy.count("manifest") == 0)
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

    /// A registries.conf table may move a namespace elsewhere (`prefix`
    /// and `location`), and mirror it under a namespace of the mirror's:
    /// the names under the prefix are asked for there, with the rest of
    /// the name; the others where they name. Such tables were refused at
    /// start, and one with a prefix and a whole registry as location was
    /// read as the location alone, so its names were asked for where they
    /// named.
    @Test func aNamespaceIsPulledFromWhereRegistriesConfMovesIt() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (mirror, upstreamProxy, mirrorProxy) = (pair.mirror, pair.upstreamProxy, pair.mirrorProxy)
        let moved = try await mirror.pushMinimalImage("physical/app", "v1", annotations: #"{"at":"location"}"#)
        let mirrored = try await mirror.pushMinimalImage("cache/app", "v2", annotations: #"{"at":"mirror"}"#)
        let conf = try Self.registriesConf(
            """
            [[registry]]
            prefix = "\(upstreamProxy.host)/logical"
            location = "\(mirrorProxy.host)/physical"
            [[registry.mirror]]
            location = "\(mirrorProxy.host)/cache"
            """)
        defer { try? FileManager.default.removeItem(at: conf) }
        let session = try RPCSession(["--registries-conf", conf.path])
        let fromLocation = try await session.result(
            "ec.oci.image_manifest", [.string("\(upstreamProxy.host)/logical/app:v1")])
        #expect(fromLocation["annotations"]?["at"] == "location", "\(fromLocation.jsonText)")
        let fromMirror = try await session.result(
            "ec.oci.descriptor", [.string("\(upstreamProxy.host)/logical/app:v2")])
        #expect(fromMirror["digest"] == .string(mirrored.digest))
        let referrers = try await session.result(
            "ec.oci.image_referrers", [.string("\(upstreamProxy.host)/logical/app@\(moved.digest)")])
        #expect(referrers == [])
        #expect(upstreamProxy.count("manifest") == 0, "nothing under the prefix is asked for where it names")
        // A name outside the prefix is asked for where it names.
        let outside = try await session.result("ec.oci.descriptor", [.string("\(upstreamProxy.host)/app:v1")])
        #expect(outside["digest"] == .string(pair.image.digest))
        #expect(upstreamProxy.count("manifest") == 1)
        await session.close()
    }

    /// A tag kept on disk is kept under where it was resolved. A process
    /// started after registries.conf moves the name answers from the new
    /// place, not with what the disk holds of the old one within the tag
    /// TTL; and a name the configuration can no longer move is refused
    /// whatever the disk holds of it.
    @Test func aTagOnDiskIsNotAnsweredForANameRegistriesConfHasSinceMoved() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (upstreamProxy, mirrorProxy) = (pair.upstreamProxy, pair.mirrorProxy)
        let moved = try await pair.mirror.pushMinimalImage("moved/app", "v1", annotations: #"{"at":"mirror"}"#)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-moved-\(UUID().uuidString)")
        let conf = try Self.registriesConf(
            "[[registry]]\nprefix = \"\(upstreamProxy.host)/app\"\nlocation = \"\(mirrorProxy.host)/moved/app\"\n")
        let hostMoved = try Self.registriesConf(
            "[[registry]]\nprefix = \"\(upstreamProxy.host.prefix { $0 != ":" })\"\nlocation = \"\(mirrorProxy.host)\"\n"
        )
        defer {
            for file in [cache, conf, hostMoved] { try? FileManager.default.removeItem(at: file) }
        }
        let reference = JSONValue.string("\(upstreamProxy.host)/app:v1")
        func digest(_ arguments: [String]) async throws -> JSONValue {
            let session = try RPCSession(arguments, environment: ["OCIRPC_CACHE_DIR": cache.path])
            // The manifest is kept on disk with its tag, then described from there.
            _ = try await session.call("ec.oci.image_manifest", [reference])
            let answer = try await session.call("ec.oci.descriptor", [reference])
            await session.close()
            return answer["result"]?["digest"] ?? .string(answer.errorReason ?? "no answer")
        }
        #expect(try await digest([]) == .string(pair.image.digest))
        let asked = upstreamProxy.count("manifest")
        #expect(try await digest(["--registries-conf", conf.path]) == .string(moved.digest))
        #expect(mirrorProxy.count("manifest") == 1)
        // Each kept under its own origin, and answered from disk again.
        #expect(try await digest([]) == .string(pair.image.digest))
        #expect(try await digest(["--registries-conf", conf.path]) == .string(moved.digest))
        #expect(upstreamProxy.count("manifest") == asked)
        #expect(mirrorProxy.count("manifest") == 1)
        // A host moved elsewhere keeping its port cannot be honoured: refused, not read from disk.
        #expect(try await digest(["--registries-conf", hostMoved.path]) == .string("invalid_reference"))
    }

    /// `blocked` is for the table's prefix as written: a namespace, and a
    /// registry whose table also names a location (which the prefix was
    /// dropped for, so the location was blocked and the registry served).
    @Test func aBlockedPrefixIsRefusedWhateverItsTableMovesItTo() async throws {
        let pair = try await Pair()
        defer { pair.stop() }
        let (upstream, upstreamProxy, mirrorProxy) = (pair.upstream, pair.upstreamProxy, pair.mirrorProxy)
        let other = try await upstream.pushMinimalImage("other", "v1")
        let namespace = try Self.registriesConf(
            "[[registry]]\nprefix = \"\(upstreamProxy.host)/app\"\nblocked = true\n")
        let moved = try Self.registriesConf(
            "[[registry]]\nprefix = \"\(upstreamProxy.host)\"\nlocation = \"\(mirrorProxy.host)\"\nblocked = true\n")
        // containers/image matches a bare host on any port, and a wildcard
        // (`*.0.0.1`) any host under it: both block the loopback registry.
        let host = upstreamProxy.host.prefix { $0 != ":" }
        let anyPort = try Self.registriesConf("[[registry]]\nprefix = \"\(host)\"\nblocked = true\n")
        let wildcard = try Self.registriesConf(
            "[[registry]]\nprefix = \"*.\(host.drop { $0 != "." }.dropFirst())\"\nblocked = true\n")
        defer {
            for conf in [namespace, moved, anyPort, wildcard] { try? FileManager.default.removeItem(at: conf) }
        }
        for conf in [namespace, moved, anyPort, wildcard] {
            let session = try RPCSession(["--registries-conf", conf.path])
            let refused = try await session.call("ec.oci.image_manifest", [.string("\(upstreamProxy.host)/app:v1")])
            #expect(refused.errorReason == "blocked", "\(refused.jsonText)")
            #expect(refused.errorCode == -32002)
            let answer = try await session.call("ec.oci.descriptor", [.string("\(upstreamProxy.host)/other:v1")])
            if conf == namespace {
                #expect(answer["result"]?["digest"] == .string(other.digest), "\(answer.jsonText)")
            } else {
                #expect(answer.errorReason == "blocked", "\(answer.jsonText)")
            }
            await session.close()
        }
        #expect(upstreamProxy.count("manifest") == 1)
        #expect(mirrorProxy.count("manifest") == 0)
    }
}
