import Foundation
import Locking
import Memory
import Reasons
import Testing
import TestFixtures
@testable import Registry

/// A body held in memory is taken from the memory budget of the calls in
/// flight as it arrives, and held as long as the response, or a manifest
/// made of it, is: a registry's answers cannot pile up past the budget
/// while the calls that asked wait for a thread.
@Suite(.serialized) struct BodyChargeTests {
    private static func transport(_ memory: MemoryBudget) -> HTTPTransport {
        var settings = HTTPTransport.Settings()
        settings.retries = 3
        settings.baseBackoff = 0.01
        return HTTPTransport(settings: settings, logger: .disabled, counters: RegistryCounters(), memory: memory)
    }

    /// A server answering every request with `count` bytes, counting the requests.
    private static func server(bodyBytes count: Int, requests: Locked<Int>) throws -> TestHTTPServer {
        let body = [UInt8](repeating: 0x61, count: count)
        return try TestHTTPServer { _ in
            requests.withLock { $0 += 1 }
            return .response(status: 200, headers: [("Content-Length", String(count))], body: body)
        }
    }

    @Test func aBodyIsTakenFromTheBudgetUntilTheLastCopyOfItsResponseGoes() async throws {
        let requests = Locked(0)
        let server = try Self.server(bodyBytes: 100_000, requests: requests)
        defer { server.stop() }
        let memory = MemoryBudget(limit: 1 << 20)
        let transport = Self.transport(memory)
        var response: HTTPResponse? = try await transport.send(HTTPRequest(url: server.baseURL + "/m"), kind: .manifest)
        #expect(response?.body.count == 100_000)
        #expect(memory.heldBytes == 100_000)
        var copy = response
        response = nil
        #expect(memory.heldBytes == 100_000)
        copy = nil
        #expect(copy == nil && memory.heldBytes == 0)
    }

    @Test func aBodyTheBudgetHasNoRoomForFailsItsRequestOnceAndRetryably() async throws {
        let requests = Locked(0)
        let server = try Self.server(bodyBytes: 100_000, requests: requests)
        defer { server.stop() }
        let memory = MemoryBudget(limit: 64 << 10)
        let transport = Self.transport(memory)
        await #expect {
            _ = try await transport.send(HTTPRequest(url: server.baseURL + "/m"), kind: .manifest)
        } throws: { error in
            guard let error = error as? RegistryError else { return false }
            return error.reason == .memoryLimit && error.kind == .limitExceeded && error.retryable
                && error.message.contains("--max-memory-bytes")
        }
        // Not retried here: the memory is held by other calls.
        #expect(requests.withLock { $0 } == 1)
        #expect(memory.heldBytes == 0)
        // With room again, the same request is answered.
        let roomy = Self.transport(MemoryBudget(limit: 1 << 20))
        #expect(try await roomy.send(HTTPRequest(url: server.baseURL + "/m"), kind: .manifest).body.count == 100_000)
    }

    @Test func theErrorBodyOfADownloadIsTakenAsAnyBodyHeldInMemory() async throws {
        let body = [UInt8](repeating: 0x61, count: 100_000)
        let server = try TestHTTPServer { _ in
            .response(status: 404, headers: [("Content-Length", String(body.count))], body: body)
        }
        defer { server.stop() }
        let memory = MemoryBudget(limit: 1 << 20)
        let directory = FileManager.default.temporaryDirectory
        var result: (file: DownloadedFile?, response: HTTPResponse)? = try await Self.transport(memory).download(
            HTTPRequest(url: server.baseURL + "/blob"), to: directory, hashing: .sha256, limit: 1 << 20, kind: .blob)
        #expect(result?.file == nil)
        #expect(result?.response.status == 404)
        #expect(memory.heldBytes == body.count)
        result = nil
        #expect(result == nil && memory.heldBytes == 0)
    }

    @Test func aBodyTakesTheLengthItDeclaresAtOnceSoThatOneAdmittedCanFinish() {
        let budget = MemoryBudget(limit: 250)
        var first: MemoryShare?
        var firstTaken = 0
        #expect(CurlTransfer.cover(10, with: &first, taken: &firstTaken, from: budget, declared: 100, limit: 1000))
        #expect(firstTaken == 100 && budget.heldBytes == 100)
        // Within what it declared, nothing more is taken.
        #expect(CurlTransfer.cover(100, with: &first, taken: &firstTaken, from: budget, declared: 100, limit: 1000))
        #expect(budget.heldBytes == 100)
        // A body declaring 200 finds no room at its first byte: refused, taking nothing.
        var second: MemoryShare?
        var secondTaken = 0
        #expect(!CurlTransfer.cover(1, with: &second, taken: &secondTaken, from: budget, declared: 200, limit: 1000))
        #expect(secondTaken == 0 && budget.heldBytes == 100)
        // A declared length past the limit is taken up to the limit; a body
        // that declares none, as it comes.
        var third: MemoryShare?
        var thirdTaken = 0
        #expect(CurlTransfer.cover(5, with: &third, taken: &thirdTaken, from: budget, declared: 1 << 40, limit: 50))
        #expect(thirdTaken == 50)
        var fourth: MemoryShare?
        var fourthTaken = 0
        #expect(CurlTransfer.cover(20, with: &fourth, taken: &fourthTaken, from: budget, declared: nil, limit: 1000))
        #expect(fourthTaken == 20 && budget.heldBytes == 170)
        // Past what it declared, a body is taken as it comes.
        #expect(CurlTransfer.cover(120, with: &first, taken: &firstTaken, from: budget, declared: 100, limit: 1000))
        #expect(firstTaken == 120 && budget.heldBytes == 190)
        first = nil
        third = nil
        fourth = nil
        #expect(first == nil && third == nil && fourth == nil && budget.heldBytes == 0)
    }

    @Test func aSmallBodyIsNotCounted() async throws {
        let requests = Locked(0)
        let server = try Self.server(bodyBytes: MemoryBudget.uncountedValueBytes, requests: requests)
        defer { server.stop() }
        let memory = MemoryBudget(limit: 1)
        let response = try await Self.transport(memory).send(HTTPRequest(url: server.baseURL + "/m"), kind: .manifest)
        #expect(response.body.count == MemoryBudget.uncountedValueBytes)
        #expect(response.bodyCharge == nil)
        #expect(memory.heldBytes == 0)
        let small = FetchedManifest(bytes: response.body, mediaType: "m")
        #expect(try small.charged(to: memory).charge == nil)
    }

    @Test func aManifestKeepsItsChargeWhileACopyThatCarriesItIsKept() throws {
        let size = 100_000
        let memory = MemoryBudget(limit: size * 3 / 2)
        let bytes = [UInt8](repeating: 0x7B, count: size)
        var charged: FetchedManifest? = try FetchedManifest(bytes: bytes, mediaType: "m").charged(to: memory)
        #expect(memory.heldBytes == size)
        // Charging again what already is takes nothing more.
        var again = try charged?.charged(to: memory)
        #expect(memory.heldBytes == size)
        // The copy a cache keeps holds nothing: the budget goes with the last charged copy.
        let kept = charged?.uncharged
        #expect(kept?.charge == nil)
        #expect(kept?.bytes == bytes)
        charged = nil
        #expect(memory.heldBytes == size)
        again = nil
        #expect(again == nil && memory.heldBytes == 0)
        // Past the budget, refused, taking nothing.
        let twice = FetchedManifest(bytes: bytes + bytes, mediaType: "m")
        #expect(throws: MemoryLimitExceeded(limit: size * 3 / 2, asked: 2 * size)) { try twice.charged(to: memory) }
        #expect(memory.heldBytes == 0)
        #expect(try twice.charged(to: nil).charge == nil)
    }
}
