import Foundation
import JSON
import Testing
import TestFixtures

/// The debug request log through the binary, against a real registry: each
/// line says what its own request cost (cache hits and misses, registry
/// requests), not what the process did in all.
@Suite(.needsDockerRegistry) struct RequestLogTests {
    @Test func eachRequestLineCountsItsOwnCacheLookupsAndRegistryRequests() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await registry.pushMinimalImage("logged", "v1")
        let ref = "\(registry.host)/logged:v1"
        let session = try RPCSession(["--log-level", "debug", "--log-format", "json"])
        // One at a time: the second starts after the first is answered.
        var ids: [String] = []
        for _ in 0..<2 {
            let response = try await session.call("ec.oci.image_manifest", [.string(ref)])
            #expect(response["result"] != nil)
            ids.append(response["id"]?.numberText ?? response["id"]?.stringValue ?? "?")
        }
        await session.close()
        let stderr = session.process.stderr
        let lines = stderr.split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8)) }
        let requests = lines.filter {
            ($0["msg"] ?? $0["message"]) == "request" && $0["method"] == "ec.oci.image_manifest"
        }
        #expect(requests.count == 2, "\(stderr)")
        // A line is written after its call's answer, so the second call's
        // line may come first: each is found by its id.
        guard requests.count == 2, let cold = requests.first(where: { $0["id"] == .string(ids[0]) }),
            let warm = requests.first(where: { $0["id"] == .string(ids[1]) })
        else {
            Issue.record("no request line for each of the ids \(ids): \(stderr)")
            return
        }
        #expect(cold["subject"] == .string(ref) && cold["outcome"] == "ok")
        #expect(Int(cold["registryRequests"]?.stringValue ?? "") ?? 0 >= 1, "\(cold)")
        #expect(Int(cold["cacheMisses"]?.stringValue ?? "") ?? 0 >= 1, "\(cold)")
        #expect(warm["registryRequests"] == "0", "\(warm)")
        #expect(warm["cacheMisses"] == "0", "\(warm)")
        #expect(Int(warm["cacheHits"]?.stringValue ?? "") ?? 0 >= 1, "\(warm)")
    }
}
