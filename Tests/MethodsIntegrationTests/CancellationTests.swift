import Foundation
import JSON
import Testing
import TestFixtures

@Suite(.serialized, .needsDockerRegistry) struct CancellationTests {
    @Test func cancellingABatchStopsItsUnfinishedWork() async throws {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        defer { registry.stop(); proxy.stop() }
        var refs: [JSONValue] = []
        for i in 0..<20 {
            try await registry.pushMinimalImage("slow", "t\(i)")
            refs.append(.string("\(proxy.host)/slow:t\(i)"))
        }
        // Two tags answer at once, the rest after 30 s each: the batch
        // cannot end before the cancellation sent at its first notification
        // arrives, however long other tests keep this test's task waiting
        // for a thread (a 0.3 s latency for every tag was outrun so).
        let quick: Set<String> = ["/v2/slow/manifests/t0", "/v2/slow/manifests/t1"]
        proxy.inject { request in
            RegistryProxy.kind(of: request.path) == "manifest" && !quick.contains(request.path) ? .delay(30) : nil
        }
        let session = try RPCSession(["--max-concurrency", "2"])
        let id = session.send("ec.oci.image_manifests", ["refs": .array(refs), "partialResultToken": 1])
        for _ in 0..<6_000 where session.notifications.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!session.notifications.isEmpty)
        session.notify("$/cancelRequest", ["id": .integer(id)])
        let response = try await session.response(id)
        #expect(response["error"]?["code"] == -32800)
        let progressAtCancel = session.notifications.count
        #expect(progressAtCancel < 20)
        let requestsAtCancel = proxy.count("manifest")
        try await Task.sleep(for: .milliseconds(1000))
        #expect(proxy.count("manifest") <= requestsAtCancel + 2, "no new fetches once cancelled")
        #expect(session.notifications.count == progressAtCancel, "nothing is reported after the response")
        // The server goes on serving.
        proxy.inject { _ in nil }
        #expect(try await session.result("ec.oci.image_manifest", [refs[19]])["schemaVersion"] == 2)
        await session.close()
    }

    @Test func aCancelledRequestLeavesAnIdenticalOneRunning() async throws {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        defer { registry.stop(); proxy.stop() }
        try await registry.pushMinimalImage("shared", "v1")
        // The proxy holds the one fetch both requests wait on for 3 s; the
        // first is cancelled once the second has joined it and the fetch
        // has reached the proxy (not after a fixed sleep: a busy machine
        // can stretch a short one past the whole fetch).
        proxy.setLatency(3)
        let session = try RPCSession()
        let ref: JSONValue = .string("\(proxy.host)/shared:v1")
        let first = session.send("ec.oci.image_manifest", [ref])
        let second = session.send("ec.oci.image_manifest", [ref])
        for _ in 0..<400 {
            let joins = try await session.result("server.stats", [:])["singleflightJoins"]?.intValue ?? 0
            if joins > 0 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        for _ in 0..<2000 where proxy.count("manifest") == 0 { try await Task.sleep(for: .milliseconds(5)) }
        session.notify("$/cancelRequest", ["id": .integer(first)])
        let firstAnswer = try await session.response(first)
        #expect(firstAnswer["error"]?["code"] == -32800, "\(firstAnswer)")
        #expect(try await session.response(second)["result"]?["schemaVersion"] == 2)
        #expect(proxy.count("manifest") == 1, "the shared fetch ran once and was not restarted")
        await session.close()
    }
}
