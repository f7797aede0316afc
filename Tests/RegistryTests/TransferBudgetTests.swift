import Foundation
import Locking
import Memory
import Reasons
import Testing
import TestFixtures
@testable import Registry

/// What a transfer holds is taken from the budget of the calls in flight
/// as it arrives, and held as long as what keeps it is: a body in memory
/// (the response, or a manifest made of it) from the memory budget, a
/// download's file from the download budget. A registry's answers cannot
/// pile up past the budgets while the calls that asked wait for a thread.
@Suite(.serialized) struct TransferBudgetTests {
    private static func transport(memory: MemoryBudget? = nil, downloads: DownloadBudget? = nil) -> HTTPTransport {
        var settings = HTTPTransport.Settings()
        settings.retries = 3
        settings.baseBackoff = 0.01
        return HTTPTransport(
            settings: settings, logger: .disabled, counters: RegistryCounters(), memory: memory, downloads: downloads)
    }

    /// A server answering every request with `count` bytes, counting the requests.
    private static func server(bodyBytes count: Int, requests: Locked<Int> = Locked(0)) throws -> TestHTTPServer {
        let body = [UInt8](repeating: 0x61, count: count)
        return try TestHTTPServer { _ in
            requests.withLock { $0 += 1 }
            return .response(status: 200, headers: [("Content-Length", String(count))], body: body)
        }
    }

    /// A directory of its own, removed by the caller.
    private static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("downloads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Expects `fetch` refused once, retryably, for `reason`, naming `flag`,
    /// with nothing left taken from `held` and no retry of the request.
    private static func expectRefusedOnce(
        _ reason: ErrorReason, naming flag: String, requests: Locked<Int>, held: () -> Int,
        _ fetch: () async throws -> Void
    ) async {
        await #expect {
            try await fetch()
        } throws: { error in
            guard let error = error as? RegistryError else { return false }
            return error.reason == reason && error.kind == .limitExceeded && error.retryable
                && error.message.contains(flag)
        }
        // Not retried here: the room is held by other calls.
        #expect(requests.withLock { $0 } == 1)
        #expect(held() == 0)
    }

    /// Downloads `url` into `directory` through `transport`.
    private static func download(_ transport: HTTPTransport, _ url: String, to directory: URL) async throws
        -> (file: DownloadedFile?, response: HTTPResponse)
    {
        try await transport.download(
            HTTPRequest(url: url), to: directory, hashing: .sha256, limit: 1 << 20, kind: .blob)
    }

    @Test func aBodyIsTakenFromTheBudgetUntilTheLastCopyOfItsResponseGoes() async throws {
        let server = try Self.server(bodyBytes: 100_000)
        defer { server.stop() }
        let memory = MemoryBudget(limit: 1 << 20)
        let transport = Self.transport(memory: memory)
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
        let request = HTTPRequest(url: server.baseURL + "/m")
        await Self.expectRefusedOnce(
            .memoryLimit, naming: "--max-memory-bytes", requests: requests, held: { memory.heldBytes }
        ) {
            _ = try await Self.transport(memory: memory).send(request, kind: .manifest)
        }
        // With room again, the same request is answered.
        let roomy = Self.transport(memory: MemoryBudget(limit: 1 << 20))
        #expect(try await roomy.send(request, kind: .manifest).body.count == 100_000)
    }

    @Test func theErrorBodyOfADownloadIsTakenAsAnyBodyHeldInMemory() async throws {
        let body = [UInt8](repeating: 0x61, count: 100_000)
        let server = try TestHTTPServer { _ in
            .response(status: 404, headers: [("Content-Length", String(body.count))], body: body)
        }
        defer { server.stop() }
        let memory = MemoryBudget(limit: 1 << 20)
        let directory = FileManager.default.temporaryDirectory
        var result: (file: DownloadedFile?, response: HTTPResponse)? = try await Self.download(
            Self.transport(memory: memory), server.baseURL + "/blob", to: directory)
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
        let server = try Self.server(bodyBytes: MemoryBudget.uncountedValueBytes)
        defer { server.stop() }
        let memory = MemoryBudget(limit: 1)
        let response = try await Self.transport(memory: memory).send(
            HTTPRequest(url: server.baseURL + "/m"), kind: .manifest)
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

    @Test func aDownloadIsTakenFromTheBudgetUntilTheLastCopyOfItsFileGoes() async throws {
        let server = try Self.server(bodyBytes: 100_000)
        defer { server.stop() }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let downloads = DownloadBudget(limit: 1 << 20)
        var file: DownloadedFile? = try await Self.download(
            Self.transport(downloads: downloads), server.baseURL + "/blob", to: directory
        ).file
        #expect(file?.size == 100_000)
        #expect(downloads.heldBytes == 100_000)
        var blob: VerifiedBlob? = file.map {
            VerifiedBlob(file: $0.url, size: $0.size, digest: $0.digest, charge: $0.charge)
        }
        file = nil
        #expect(downloads.heldBytes == 100_000)
        blob?.discard()
        blob = nil
        #expect(blob == nil && downloads.heldBytes == 0)
    }

    /// A finished task's result may keep a copy of the blob after its
    /// file is discarded (a download started ahead, then abandoned): the
    /// budget is given back with the file, not with that copy.
    @Test func aDownloadIsGivenBackWhenItsFileIsDiscardedThoughACopyIsKept() async throws {
        let server = try Self.server(bodyBytes: 100_000)
        defer { server.stop() }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let downloads = DownloadBudget(limit: 1 << 20)
        let file = try #require(
            try await Self.download(Self.transport(downloads: downloads), server.baseURL + "/blob", to: directory).file)
        let blob = VerifiedBlob(file: file.url, size: file.size, digest: file.digest, charge: file.charge)
        let kept = blob
        #expect(downloads.heldBytes == 100_000)
        blob.discard()
        #expect(downloads.heldBytes == 0)
        #expect(!FileManager.default.fileExists(atPath: kept.file.path))
        // Discarded again, or its last copy gone, it gives back nothing twice.
        kept.discard()
        #expect(downloads.heldBytes == 0)
    }

    @Test func aDownloadTheBudgetHasNoRoomForFailsOnceRetryablyAndLeavesNoFile() async throws {
        let requests = Locked(0)
        let server = try Self.server(bodyBytes: 100_000, requests: requests)
        defer { server.stop() }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let downloads = DownloadBudget(limit: 64 << 10)
        await Self.expectRefusedOnce(
            .downloadLimit, naming: "--max-download-bytes", requests: requests, held: { downloads.heldBytes }
        ) {
            _ = try await Self.download(Self.transport(downloads: downloads), server.baseURL + "/blob", to: directory)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}

/// The downloads' default under a container's memory limit: only where
/// the temporary directory is held in memory (its pages are the
/// container's), a quarter of the limit when lower than 4 GiB.
@Suite struct DownloadBudgetDefaults {
    @Test func aTemporaryDirectoryInMemoryTakesAQuarterOfAContainersLimit() {
        #expect(DownloadBudget.isHeldInMemory("/dev/shm"))
        #expect(DownloadBudget.defaultLimit(temporary: "/dev/shm", containerLimit: 512 << 20) == 128 << 20)
        #expect(DownloadBudget.defaultLimit(temporary: "/dev/shm", containerLimit: 64 << 30) == 4 << 30)
        #expect(DownloadBudget.defaultLimit(temporary: "/dev/shm", containerLimit: nil) == 4 << 30)
    }

    @Test func aTemporaryDirectoryOnDiskKeepsTheDefault() {
        let onDisk = FileManager.default.currentDirectoryPath
        #expect(!DownloadBudget.isHeldInMemory(onDisk), "\(onDisk) is taken to be on disk")
        #expect(DownloadBudget.defaultLimit(temporary: onDisk, containerLimit: 512 << 20) == 4 << 30)
        #expect(!DownloadBudget.isHeldInMemory("/nonexistent"))
    }
}
