import Foundation
import Reasons
import Synchronization
import Testing
import TestFixtures

@testable import Registry

/// A blob download that breaks off part way is resumed where it stopped
/// (`Range: bytes=<written>-`), from a real registry; a registry that
/// answers the range otherwise never gets its bytes appended, and what
/// comes whole is verified against the digest either way.
@Suite(.serialized, .needsDockerRegistry) struct ResumedDownloads {
    private func client(retries: Int = 3, downloads: DownloadBudget? = nil) -> RegistryClient {
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = retries
        configuration.transport.baseBackoff = 0.01
        configuration.downloads = downloads
        return RegistryClient(configuration: configuration, logger: .disabled)
    }

    private static let blob = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
    private static let total = blob.count

    /// A directory of its own for the downloads, removed afterwards.
    private func withDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-dl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory)
    }

    private func isEmpty(_ directory: URL) throws -> Bool {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty
    }

    /// A hostile registry that serves the blob (as a registry would, until
    /// it is scripted otherwise), and the blob's digest.
    private static func hostileServingTheBlob() throws -> (HostileRegistry, Digest) {
        let hostile = try HostileRegistry()
        return (hostile, hostile.blob("app", blob))
    }

    /// The error fetching the blob `digest` from `hostile` ends in; no
    /// file is left behind.
    private func failure(
        fetching digest: Digest, from hostile: HostileRegistry, retries: Int = 3,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> RegistryError? {
        try await withDirectory { (directory) async throws in
            let error = await registryError(
                {
                    _ = try await client(retries: retries).fetchBlob(
                        ImageReference.parse("\(hostile.host)/app@\(digest)"), directory: directory)
                }, sourceLocation: sourceLocation)
            #expect(try isEmpty(directory), "no file left", sourceLocation: sourceLocation)
            return error
        }
    }

    /// The blob's first 100,000 bytes, then the connection closes.
    private static let brokenOff = TestHTTPReply.truncated(
        status: 200, headers: [], body: Array(blob.prefix(100_000)), declaredLength: blob.count)

    /// A rule that cuts the first blob answer half way.
    private static func cutFirstBlob() -> @Sendable (TestHTTPRequest) -> ProxyFault? {
        let seen = Atomic<Int>(0)
        return { request in
            guard RegistryProxy.kind(of: request.path) == "blob" else { return nil }
            return seen.add(1, ordering: .relaxed).newValue == 1 ? .truncate : nil
        }
    }

    @Test func aBlobBrokenOffPartWayIsResumedFromTheRegistryWhereItStopped() async throws {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        defer {
            registry.stop()
            proxy.stop()
        }
        let digest = try await registry.pushBlob("app", Data(Self.blob))
        proxy.inject(Self.cutFirstBlob())
        let client = client()
        try await withDirectory { directory in
            let fetched = try await client.fetchBlob(
                ImageReference.parse("\(proxy.host)/app@\(digest)"), directory: directory)
            #expect(try fetched.contents() == Data(Self.blob))
            fetched.discard()
            #expect(try isEmpty(directory))
        }
        let half = Self.blob.count / 2
        let asked = proxy.seen.filter { RegistryProxy.kind(of: $0.path) == "blob" }
        #expect(asked.map { $0.headers["range"] } == [nil, "bytes=\(half)-"])
        // The registry itself answered the range: only the rest came again.
        let answers = proxy.answered.filter { RegistryProxy.kind(of: $0.path) == "blob" }
        #expect(answers.map(\.status) == [200, 206])
        #expect(answers.map(\.bytesSent) == [half, Self.blob.count - half])
        #expect(client.counters.snapshot["retries"] == 1)
    }

    /// A registry that answers the range with the whole blob (`200`) is
    /// read from that answer alone.
    @Test func aRegistryThatIgnoresTheRangeIsReadWholeFromItsAnswer() async throws {
        let (hostile, digest) = try Self.hostileServingTheBlob()
        defer { hostile.stop() }
        let served = Atomic<Int>(0)
        hostile.scriptBlobs { _ in
            guard served.add(1, ordering: .relaxed).newValue == 1 else { return nil }
            return Self.brokenOff
        }
        try await withDirectory { directory in
            let fetched = try await client().fetchBlob(
                ImageReference.parse("\(hostile.host)/app@\(digest)"), directory: directory)
            #expect(try fetched.contents() == Data(Self.blob))
            fetched.discard()
            #expect(try isEmpty(directory), "the part kept from the first answer is gone")
        }
        #expect(
            hostile.requests.filter { $0.path.contains("/blobs/") }.map { $0.headers["range"] } == [
                nil, "bytes=100000-",
            ])
    }

    /// The part kept holds its share of the download budget until it is
    /// resumed, or until a whole answer comes: with room for the blob once,
    /// not once and a half, a registry that ignores the range is read
    /// whole, and a resumed download holds the blob's size once.
    @Test func aPartKeptHoldsItsShareOfTheDownloadsUntilItIsResumedOrDropped() async throws {
        let (hostile, digest) = try Self.hostileServingTheBlob()
        defer { hostile.stop() }
        for honoursRange in [false, true] {
            hostile.scriptBlobs { request in
                if let range = request.headers["range"], honoursRange {
                    #expect(range == "bytes=200000-")
                    return .response(
                        status: 206, headers: [("Content-Range", "bytes 200000-\(Self.total - 1)/\(Self.total)")],
                        body: Array(Self.blob[200_000...]))
                }
                guard request.headers["range"] == nil else { return nil }
                return .truncated(
                    status: 200, headers: [], body: Array(Self.blob.prefix(200_000)),
                    declaredLength: Self.total)
            }
            let downloads = DownloadBudget(limit: Self.total + 1000)
            try await withDirectory { directory in
                let fetched = try await client(downloads: downloads).fetchBlob(
                    ImageReference.parse("\(hostile.host)/app@\(digest)"), directory: directory)
                #expect(try fetched.contents() == Data(Self.blob), "honours the range: \(honoursRange)")
                #expect(downloads.bytes.heldBytes == Self.total, "honours the range: \(honoursRange)")
                fetched.discard()
            }
            #expect(downloads.bytes.heldBytes == 0, "honours the range: \(honoursRange)")
        }
    }

    /// A `206` whose `Content-Range` does not start where the download
    /// stopped is not appended: the part kept is dropped, and the next
    /// attempt asks for the whole blob again.
    @Test func anAnswerOfAnotherRangeIsNeverAppended() async throws {
        let (hostile, digest) = try Self.hostileServingTheBlob()
        defer { hostile.stop() }
        for wrong in [
            "bytes 0-\(Self.total - 1)/\(Self.total)", "bytes 99999-\(Self.total - 1)/\(Self.total)",
            "bytes */\(Self.total)", "",
        ] {
            let served = Atomic<Int>(0)
            hostile.scriptBlobs { request in
                switch served.add(1, ordering: .relaxed).newValue {
                case 1:
                    return Self.brokenOff
                case 2:
                    let headers = wrong.isEmpty ? [] : [("Content-Range", wrong)]
                    return .response(status: 206, headers: headers, body: Array(Self.blob.suffix(Self.total - 100_000)))
                default: return nil
                }
            }
            try await withDirectory { directory in
                let fetched = try await client().fetchBlob(
                    ImageReference.parse("\(hostile.host)/app@\(digest)"), directory: directory)
                #expect(try fetched.contents() == Data(Self.blob), "\(wrong)")
                fetched.discard()
                #expect(try isEmpty(directory))
            }
            let ranges = hostile.requests.filter { $0.path.contains("/blobs/") }.suffix(3).map { $0.headers["range"] }
            #expect(ranges == [nil, "bytes=100000-", nil], "\(wrong)")
        }
        // Answered so every time, the retries run out: a server error, no file left.
        hostile.scriptBlobs { request in
            if request.headers["range"] == nil {
                return Self.brokenOff
            }
            return .response(
                status: 206, headers: [("Content-Range", "bytes 0-\(Self.total - 1)/\(Self.total)")], body: Self.blob)
        }
        let error = try await failure(fetching: digest, from: hostile, retries: 1)
        #expect(error?.reason == .serverError)
        #expect(error?.message.contains("Content-Range: bytes 0-") == true, "\(String(describing: error))")
    }

    /// A registry that refuses the range (`416`) is asked for the whole
    /// blob, and the part kept is dropped.
    @Test func aRangeRefusedIsAskedForWhole() async throws {
        let (hostile, digest) = try Self.hostileServingTheBlob()
        defer { hostile.stop() }
        let served = Atomic<Int>(0)
        hostile.scriptBlobs { _ in
            switch served.add(1, ordering: .relaxed).newValue {
            case 1: return Self.brokenOff
            case 2: return HostileRegistry.registryError(416, "RANGE_INVALID")
            default: return nil
            }
        }
        try await withDirectory { directory in
            let fetched = try await client().fetchBlob(
                ImageReference.parse("\(hostile.host)/app@\(digest)"), directory: directory)
            #expect(try fetched.contents() == Data(Self.blob))
            fetched.discard()
            #expect(try isEmpty(directory))
        }
        #expect(hostile.requests.map { $0.headers["range"] } == [nil, "bytes=100000-", nil])
    }

    /// The rest of the blob forged: the whole fails its digest, and no
    /// file is left.
    @Test func aForgedRestFailsTheDigestAndLeavesNoFile() async throws {
        let (hostile, digest) = try Self.hostileServingTheBlob()
        defer { hostile.stop() }
        hostile.scriptBlobs { request in
            guard let range = request.headers["range"] else {
                return Self.brokenOff
            }
            #expect(range == "bytes=100000-")
            var forged = Array(Self.blob.suffix(Self.total - 100_000))
            forged[forged.count / 2] ^= 0x01
            return .response(
                status: 206, headers: [("Content-Range", "bytes 100000-\(Self.total - 1)/\(Self.total)")], body: forged)
        }
        #expect(try await failure(fetching: digest, from: hostile)?.reason == .digestMismatch)
    }

    /// A `206` to a request for the whole blob is not taken for it.
    @Test func aPartialAnswerNobodyAskedForIsRefused() async throws {
        let (hostile, digest) = try Self.hostileServingTheBlob()
        defer { hostile.stop() }
        hostile.scriptBlobs { request in
            return .response(
                status: 206, headers: [("Content-Range", "bytes 0-\(Self.total - 1)/\(Self.total)")], body: Self.blob)
        }
        let error = try await failure(fetching: digest, from: hostile)
        #expect(error?.reason == .serverError)
        #expect(error?.httpStatus == 206)
    }
}
