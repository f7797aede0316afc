import Foundation
import Locking
import Testing
import TestFixtures
@testable import Registry

/// What the downloads in flight hold on disk is bounded together: a
/// download is taken from the budget as it is written, and held as long as
/// the blob that holds its file is.
@Suite(.serialized) struct DownloadBudgetTests {
    private static func transport(_ downloads: DownloadBudget) -> HTTPTransport {
        var settings = HTTPTransport.Settings()
        settings.retries = 3
        settings.baseBackoff = 0.01
        return HTTPTransport(settings: settings, logger: .disabled, counters: RegistryCounters(), downloads: downloads)
    }

    /// A server answering every request with `count` bytes, counting the requests.
    private static func server(bodyBytes count: Int, requests: Locked<Int>) throws -> TestHTTPServer {
        let body = [UInt8](repeating: 0x62, count: count)
        return try TestHTTPServer { _ in
            requests.withLock { $0 += 1 }
            return .response(status: 200, headers: [("Content-Length", String(count))], body: body)
        }
    }

    /// A directory of its own, removed at the end.
    private static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("downloads-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func aDownloadIsTakenFromTheBudgetUntilTheLastCopyOfItsFileGoes() async throws {
        let requests = Locked(0)
        let server = try Self.server(bodyBytes: 100_000, requests: requests)
        defer { server.stop() }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let downloads = DownloadBudget(limit: 1 << 20)
        var file: DownloadedFile? = try await Self.transport(downloads).download(
            HTTPRequest(url: server.baseURL + "/blob"), to: directory, hashing: .sha256, limit: 1 << 20, kind: .blob
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

    @Test func aDownloadTheBudgetHasNoRoomForFailsOnceRetryablyAndLeavesNoFile() async throws {
        let requests = Locked(0)
        let server = try Self.server(bodyBytes: 100_000, requests: requests)
        defer { server.stop() }
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let downloads = DownloadBudget(limit: 64 << 10)
        await #expect {
            _ = try await Self.transport(downloads).download(
                HTTPRequest(url: server.baseURL + "/blob"), to: directory, hashing: .sha256, limit: 1 << 20,
                kind: .blob)
        } throws: { error in
            guard let error = error as? RegistryError else { return false }
            return error.reason == .downloadLimit && error.kind == .limitExceeded && error.retryable
                && error.message.contains("--max-download-bytes")
        }
        // Not retried here: the room is held by other downloads.
        #expect(requests.withLock { $0 } == 1)
        #expect(downloads.heldBytes == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
