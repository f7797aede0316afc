import Foundation
import JSON
import Registry
import Testing
import TestFixtures

@Suite(.serialized, .needsDockerRegistry) struct BatchAndCacheTests {
    @Test func batchWithoutATokenAnswersTheSuccessesInOneObject() async throws {
        let rig = try await Rig.start()
        try await rig.registry.pushMinimalImage("batch", "a")
        try await rig.registry.pushMinimalImage("batch", "b", annotations: #"{"b":"1"}"#)
        let a = rig.ref("batch", "a"), b = rig.ref("batch", "b"), missing = rig.ref("batch", "missing")
        let result = try await rig.session.result(
            "ec.oci.image_manifests", [[.string(a), .string(b), .string(a), .string(missing), "Bad Ref"]])
        #expect(result.objectValue?.keys == [a, b])
        #expect(result[b]?["annotations"] == ["b": "1"])
        #expect(try await rig.session.result("ec.oci.image_manifests", [[]]) == [:])
        let nonString = try await rig.session.call("ec.oci.image_manifests", [["x", 1]])
        #expect(nonString.errorCode == -32602)
        await rig.stop()
    }

    @Test func batchWithATokenStreamsOneProgressPerDistinctRefBeforeTheResponse() async throws {
        let rig = try await Rig.start()
        var refs: [String] = []
        for i in 0..<12 {
            try await rig.registry.pushMinimalImage("stream", "t\(i)", annotations: #"{"i":"\#(i)"}"#)
            refs.append(rig.ref("stream", "t\(i)"))
        }
        let missing = rig.ref("stream", "missing")
        // One already cached: it is answered first, without waiting.
        _ = try await rig.session.result("ec.oci.image_manifest", [.string(refs[5])])
        let asked = refs + [refs[0], missing, "::bad::"]
        let id = rig.session.send(
            "ec.oci.image_manifests", ["refs": .array(asked.map { .string($0) }), "partialResultToken": "tok"])
        let response = try await rig.session.response(id)
        #expect(response["result"] == [:])
        let messages = rig.session.process.messages
        let responseIndex = try #require(messages.firstIndex { $0["id"] == .integer(id) })
        let progress = messages.enumerated().filter { $0.element["method"] == "$/progress" }
        #expect(progress.allSatisfy { $0.offset < responseIndex })
        let values = progress.map { $0.element["params"]?["value"] ?? nil }
        #expect(progress.allSatisfy { $0.element["params"]?["token"] == "tok" })
        #expect(values.count == 14)
        #expect(Set(values.compactMap { $0["ref"]?.stringValue }) == Set(refs + [missing, "::bad::"]))
        #expect(values.first?["ref"] == .string(refs[5]) || values.first?["ref"] == "::bad::")
        for value in values {
            let ref = value["ref"]?.stringValue ?? ""
            if refs.contains(ref) {
                #expect(value["manifest"]?["schemaVersion"] == 2)
                #expect(value["manifest"]?["annotations"]?["i"] != nil)
            } else {
                #expect(value["error"]?["code"] != nil, "\(ref)")
            }
        }
        #expect(values.first { $0["ref"] == .string(missing) }?["error"]?["code"] == -32001)
        #expect(values.first { $0["ref"] == "::bad::" }?["error"]?["code"] == -32602)
        await rig.stop()
    }

    @Test func aBatchKeepsItsAnswersWithinTheMemoryBudgetAndStreamsPastIt() async throws {
        // 40 answers of about 2 KB each are kept until the last one without
        // a token: past a budget of 64 KiB. With a token nothing is kept.
        let rig = try await Rig.start(arguments: ["--max-memory-bytes", "64KiB"])
        let padding = String(repeating: "p", count: 2000)
        var refs: [String] = []
        for i in 0..<40 {
            try await rig.registry.pushMinimalImage("kept", "t\(i)", annotations: #"{"i":"\#(i)","p":"\#(padding)"}"#)
            refs.append(rig.ref("kept", "t\(i)"))
        }
        let all = JSONValue.array(refs.map { .string($0) })
        let refused = try await rig.session.call("ec.oci.image_manifests", [all])
        #expect(refused.errorCode == -32005)
        #expect(refused.errorReason == "memory_limit")
        #expect(refused["error"]?["data"]?["retryable"] == true)
        // Refused as the answers are kept: the batch stopped fetching.
        let fetched = try await rig.session.result("server.stats", [])["registryRequests"]?["manifest"]?.intValue
        #expect((fetched ?? 40) < 40)
        let few = try await rig.session.result("ec.oci.image_manifests", [.array(refs.prefix(3).map { .string($0) })])
        #expect(few.objectValue?.count == 3)
        let id = rig.session.send("ec.oci.image_manifests", ["refs": all, "partialResultToken": "tok"])
        #expect(try await rig.session.response(id)["result"] == [:])
        let streamed = rig.session.process.messages.filter {
            $0["method"] == "$/progress" && $0["params"]?["token"] == "tok"
        }
        #expect(streamed.count == 40)
        #expect(streamed.allSatisfy { $0["params"]?["value"]?["manifest"]?["annotations"]?["p"] == .string(padding) })
        await rig.stop()
    }

    @Test func concurrentIdenticalRequestsFetchOnce() async throws {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        defer { registry.stop(); proxy.stop() }
        try await registry.pushMinimalImage("hot", "v1")
        // Slow enough that all fifty arrive while the first fetch is under way.
        proxy.setLatency(0.3)
        let session = try RPCSession()
        let ref: JSONValue = .string("\(proxy.host)/hot:v1")
        let ids = (0..<50).map { _ in session.send("ec.oci.image_manifest", [ref]) }
        for id in ids { #expect(try await session.response(id)["result"]?["schemaVersion"] == 2) }
        #expect(proxy.count("manifest") == 1, "counted by the proxy")
        let stats = try await session.result("server.stats", [])
        #expect(stats["registryRequests"]?["manifest"] == 1)
        #expect((stats["singleflightJoins"]?.intValue ?? 0) >= 1)
        await session.close()
    }

    /// `server.stats` counts each cache lookup once: a cold tag is one
    /// tag-cache miss and one request; asking again is one hit per cache.
    @Test func statsCountOneMissForAColdTagAndOneHitPerCacheWhenWarm() async throws {
        let rig = try await Rig.start()
        let pushed = try await rig.registry.pushMinimalImage("counted", "v1")
        let tag = rig.ref("counted", "v1")
        _ = try await rig.session.result("ec.oci.image_manifest", [.string(tag)])
        var caches = try await rig.session.result("server.stats", [])["caches"]
        #expect(caches?["tag"]?["misses"] == 1)
        #expect(caches?["tag"]?["hits"] == 0)
        #expect(caches?["manifest"]?["hits"] == 0)
        #expect(caches?["manifest"]?["misses"] == 0)
        _ = try await rig.session.result("ec.oci.image_manifest", [.string(tag)])
        caches = try await rig.session.result("server.stats", [])["caches"]
        #expect(caches?["tag"]?["hits"] == 1)
        #expect(caches?["image_manifest"]?["hits"] == 1)
        #expect(caches?["manifest"]?["hits"] == 0)
        // By digest for another platform: the answer cache misses, the
        // manifest cache (filled by the tag fetch) hits, once each.
        let digestRef = rig.ref("counted", pushed.digest)
        _ = try await rig.session.result(
            "ec.oci.image_manifest", ["ref": .string(digestRef), "platform": "linux/arm64"])
        caches = try await rig.session.result("server.stats", [])["caches"]
        #expect(caches?["image_manifest"]?["misses"] == 1)
        #expect(caches?["manifest"]?["hits"] == 1)
        #expect(try await rig.session.result("server.stats", [])["registryRequests"]?["manifest"] == 1)
        await rig.stop()
    }

    @Test func aMovedTagIsSeenAfterTheTTL() async throws {
        // Long enough that pushing the tag again and asking (a few requests)
        // stays within it on a busy machine.
        let rig = try await Rig.start(arguments: ["--tag-ttl", "3s"])
        try await rig.registry.pushMinimalImage("moving", "v1", annotations: #"{"n":"1"}"#)
        let ref = rig.ref("moving", "v1")
        #expect(try await rig.session.result("ec.oci.image_manifest", [.string(ref)])["annotations"] == ["n": "1"])
        try await rig.registry.pushMinimalImage("moving", "v1", annotations: #"{"n":"2"}"#)
        #expect(try await rig.session.result("ec.oci.image_manifest", [.string(ref)])["annotations"] == ["n": "1"])
        try await Task.sleep(for: .milliseconds(3200))
        #expect(try await rig.session.result("ec.oci.image_manifest", [.string(ref)])["annotations"] == ["n": "2"])
        await rig.stop()
    }

    @Test func aSmallCacheEvictsAndStillAnswersCorrectly() async throws {
        let rig = try await Rig.start(arguments: ["--cache-bytes", "4KiB"])
        var refs: [String] = []
        for i in 0..<20 {
            try await rig.registry.pushMinimalImage("small", "t\(i)", annotations: #"{"i":"\#(i)"}"#)
            refs.append(rig.ref("small", "t\(i)"))
        }
        for round in 0..<2 {
            for (i, ref) in refs.enumerated() {
                let result = try await rig.session.result("ec.oci.image_manifest", [.string(ref)])
                #expect(result["annotations"] == ["i": .string("\(i)")], "round \(round)")
            }
        }
        let stats = try await rig.session.result("server.stats", [])
        let evictions =
            (stats["caches"]?["manifest"]?["evictions"]?.intValue ?? 0)
            + (stats["caches"]?["image_manifest"]?["evictions"]?.intValue ?? 0)
        #expect(evictions > 0)
        #expect((stats["cacheBytes"]?["used"]?.intValue ?? .max) <= 4096)
        #expect(try await rig.session.result("server.clearCache", []) == .null)
        #expect(try await rig.session.result("server.stats", [])["cacheBytes"]?["used"] == 0)
        await rig.stop()
    }
}
