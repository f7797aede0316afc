import Foundation
import JSON
import Testing
import TestFixtures

/// A server short of file descriptors: what cannot be refused (libdispatch's
/// worker monitor, which stopped the process when it could not open a
/// file) keeps its reserve, and calls past it fail with `descriptor_limit`,
/// never the process.
@Suite(.serialized, .needsDockerRegistry) struct DescriptorLimitTests {
    @Test func callsPastTheDescriptorLimitFailRetryablyAndTheServerGoesOn() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let count = 60
        for i in 0..<count { try await registry.pushMinimalImage("fds", "v\(i)") }
        let proxy = try RegistryProxy(upstream: registry.host)
        defer { proxy.stop() }
        // Past a second: libdispatch's monitor looks at its workers each second.
        proxy.setLatency(1.5)
        let session = try RPCSession(
            ["--max-concurrency", "100"], launcher: ["/bin/bash", "-c", #"ulimit -n 64 && exec "$@""#, "bash"])
        // Calls at once, each on a connection of its own: more than 64.
        let ids = (0..<count).map { session.send("ec.oci.image_manifest", [.string("\(proxy.host)/fds:v\($0)")]) }
        var reasons: [String: Int] = [:]
        var retryable = true
        for id in ids {
            let answer = try await session.response(id)
            let reason = answer["error"]?["data"]?["reason"]?.stringValue ?? (answer["result"] == nil ? "none" : "ok")
            reasons[reason, default: 0] += 1
            if reason == "descriptor_limit" { retryable = retryable && answer["error"]?["data"]?["retryable"] == true }
        }
        // Alive, and answering again once the calls are done.
        proxy.setLatency(0)
        let again = try await session.call("ec.oci.image_manifest", [.string("\(proxy.host)/fds:v0")])
        #expect(await session.close() == 0, "\(session.process.stderr.suffix(500))")
        #expect(reasons["descriptor_limit", default: 0] > 0, "\(reasons)")
        #expect(reasons["ok", default: 0] > 0, "\(reasons)")
        #expect(Set(reasons.keys).isSubset(of: ["ok", "descriptor_limit"]), "\(reasons)")
        #expect(retryable)
        #expect(again["result"]?["schemaVersion"] == 2)
    }
}
