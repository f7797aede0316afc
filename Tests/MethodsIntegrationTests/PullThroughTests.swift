import Foundation
import JSON
import Testing
import TestFixtures

/// Many machines share a pull-through cache (distribution's proxy mode)
/// in front of the registry; ocirpc reaches it as a mirror. These run
/// Debian's `docker-registry` in both roles.
@Suite(.serialized, .needsDockerRegistry) struct PullThroughTests {
    @Test func aPullThroughCacheServesWhatItFetchedAfterTheUpstreamStops() async throws {
        let upstream = try await TestRegistry()
        defer { upstream.stop() }
        let cache = try await TestRegistry(pullThroughOf: upstream.host)
        defer { cache.stop() }
        let pushed = try await upstream.pushMinimalImage("team/app", "v1", annotations: #"{"from":"upstream"}"#)
        let byTag = "\(upstream.host)/team/app:v1"
        let byDigest = "\(upstream.host)/team/app@\(pushed.digest)"

        let first = try RPCSession(["--mirror", "\(upstream.host)=\(cache.host)"])
        let manifest = try await first.result("ec.oci.image_manifest", [.string(byTag)])
        #expect(manifest["annotations"]?["from"] == "upstream")
        let config = try #require(manifest["config"]?["digest"]?.stringValue)
        #expect(try await first.result("ec.oci.blob", [.string("\(upstream.host)/team/app@\(config)")]) == "{}")
        #expect(try await first.result("ec.oci.image_manifest", [.string(byDigest)]) == manifest)
        await first.close()
        // The cache stores what it fetched after sending it on: on a loaded
        // machine, maybe after the session above had it.
        try await cache.waitUntilStored([pushed.digest, config])

        // The upstream gone: what went through the cache is still served,
        // by digest (verified against it, as from any mirror).
        upstream.stop()
        let second = try RPCSession(["--mirror", "\(upstream.host)=\(cache.host)", "--retries", "0"])
        #expect(try await second.result("ec.oci.image_manifest", [.string(byDigest)]) == manifest)
        #expect(try await second.result("ec.oci.blob", [.string("\(upstream.host)/team/app@\(config)")]) == "{}")
        await second.close()
    }

    @Test func aDigestOnlyMirrorIsNeverAskedForATag() async throws {
        let upstream = try await TestRegistry()
        defer { upstream.stop() }
        let cache = try await TestRegistry(pullThroughOf: upstream.host)
        defer { cache.stop() }
        let pushed = try await upstream.pushMinimalImage("team/app", "v1")
        let conf = try MirrorTests.registriesConf(
            """
            [[registry]]
            location = "\(upstream.host)"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "\(cache.host)"
            """)
        defer { try? FileManager.default.removeItem(at: conf) }
        // Fill the pull-through cache through the mirror, by digest.
        let first = try RPCSession(["--registries-conf", conf.path])
        #expect(
            try await first.call("ec.oci.image_manifest", [.string("\(upstream.host)/team/app@\(pushed.digest)")])[
                "result"] != nil)
        await first.close()
        try await cache.waitUntilStored([pushed.digest])

        upstream.stop()
        let second = try RPCSession(["--registries-conf", conf.path, "--retries", "0"])
        // The digest comes from the mirror; the tag is asked of the registry
        // alone, which is down: an error, not the mirror's word.
        #expect(
            try await second.call("ec.oci.image_manifest", [.string("\(upstream.host)/team/app@\(pushed.digest)")])[
                "result"] != nil)
        let tag = try await second.call("ec.oci.image_manifest", [.string("\(upstream.host)/team/app:v1")])
        #expect(tag.errorCode == -32004, "\(tag.jsonText)")
        await second.close()
    }
}
