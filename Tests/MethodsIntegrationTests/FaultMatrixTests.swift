import Foundation
import JSON
import Registry
import Testing
import TestFixtures

/// Registry faults seen through the server: each request is answered once
/// with the contract's code, nothing corrupt is cached, and the same
/// request succeeds once the registry is healthy again.
@Suite(.serialized, .needsDockerRegistry) struct FaultMatrixTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let fault: ProxyFault
        let kind: String
        let code: Int
        let reasons: Set<String>
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "reset", fault: .reset, kind: "manifest", code: -32004, reasons: ["connection_failed"]),
        Case(
            name: "429 storm", fault: .status(429, retryAfter: "0"), kind: "manifest", code: -32004,
            reasons: ["rate_limited"]),
        Case(name: "500", fault: .status(500), kind: "manifest", code: -32004, reasons: ["server_error"]),
        Case(name: "503", fault: .status(503), kind: "manifest", code: -32004, reasons: ["server_error"]),
        Case(name: "truncated", fault: .truncate, kind: "manifest", code: -32004, reasons: ["connection_failed"]),
        Case(name: "corrupted", fault: .corrupt, kind: "manifest", code: -32003, reasons: ["digest_mismatch"]),
        Case(name: "slow past the timeout", fault: .delay(2.5), kind: "manifest", code: -32004, reasons: ["timeout"]),
        Case(name: "corrupted blob", fault: .corrupt, kind: "blob", code: -32003, reasons: ["digest_mismatch"]),
        Case(
            name: "truncated blob", fault: .truncate, kind: "blob", code: -32004,
            reasons: ["connection_failed", "size_mismatch", "digest_mismatch"]),
    ]

    @Test(arguments: cases)
    func faultsAreTypedErrorsAndNothingCorruptIsCached(_ fault: Case) async throws {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        defer { registry.stop(); proxy.stop() }
        let image = try await registry.pushMinimalImage("faulty", "v1", annotations: #"{"ok":"yes"}"#)
        let blobText = "a blob that must come back whole"
        let blob = try await registry.pushBlob("faulty", Data(blobText.utf8))
        // A deadline only the slow case is meant to reach: a reset retried
        // on a loaded machine stays well inside it.
        let timeout = if case .delay = fault.fault { "1s" } else { "15s" }
        let session = try RPCSession(["--retries", "1", "--timeout", timeout])
        defer { Task { await session.close() } }
        let method = fault.kind == "blob" ? "ec.oci.blob" : "ec.oci.image_manifest"
        let ref: JSONValue = .string(
            fault.kind == "blob" ? "\(proxy.host)/faulty@\(blob)" : "\(proxy.host)/faulty@\(image.digest)")
        proxy.inject { RegistryProxy.kind(of: $0.path) == fault.kind ? fault.fault : nil }

        let ids = (0..<3).map { _ in session.send(method, [ref]) }
        for id in ids {
            let answer = try await session.response(id)
            #expect(answer["error"]?["code"]?.intValue == fault.code, "\(fault): \(answer.jsonText)")
            #expect(fault.reasons.contains(answer.errorReason ?? ""), "\(fault): \(answer.jsonText)")
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(
            session.process.messages.filter { ids.map { JSONValue.integer($0) }.contains($0["id"] ?? nil) }.count == 3,
            "each request answered exactly once")

        proxy.inject { _ in nil }
        let healthy = try await session.result(method, [ref])
        if fault.kind == "blob" {
            #expect(healthy == .string(blobText))
        } else {
            #expect(healthy["annotations"] == ["ok": "yes"])
        }
    }

    @Test func refusedConnectionsAreConnectionFailed() async throws {
        let port = try TestRegistry.freePort()
        let session = try RPCSession(["--retries", "1"])
        let answer = try await session.call("ec.oci.descriptor", [.string("127.0.0.1:\(port)/nobody/home:v1")])
        #expect(answer.errorCode == -32004)
        #expect(answer.errorReason == "connection_failed")
        #expect(answer["error"]?["data"]?["retryable"] == true)
        await session.close()
    }

    @Test func aRegistryRestartedMidBatchAnswersEveryRefOnce() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        var refs: [String] = []
        for i in 0..<300 {
            try await registry.pushMinimalImage("restart", "t\(i)")
            refs.append("\(registry.host)/restart:t\(i)")
        }
        let session = try RPCSession(["--max-concurrency", "4", "--retries", "2", "--timeout", "2s"])
        let id = session.send(
            "ec.oci.image_manifests", ["refs": .array(refs.map { .string($0) }), "partialResultToken": "r"])
        for _ in 0..<1000 where session.notifications.count < 30 { try await Task.sleep(for: .milliseconds(5)) }
        try await registry.restart(downFor: 0.5)
        let response = try await session.response(id, seconds: 120)
        #expect(response["result"] == [:])
        let values = session.notifications.compactMap { $0["params"]?["value"] }
        #expect(values.count == refs.count)
        #expect(Set(values.compactMap { $0["ref"]?.stringValue }) == Set(refs))
        let failed = values.filter { $0["error"] != nil }.compactMap { $0["ref"]?.stringValue }
        for value in values where value["error"] != nil {
            #expect(value["error"]?["code"] == -32004, "\(value.jsonText)")
        }
        // Whatever failed while the registry was down works now.
        let again = try await session.result("ec.oci.image_manifests", [.array(failed.map { .string($0) })])
        #expect(again.objectValue?.count == failed.count)
        await session.close()
    }
}
