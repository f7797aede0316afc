import Foundation
import JSON
import Locking
import Memory
import Reasons
import RPCDispatch
import Registry
import Testing
@testable import OCIMethods

/// The content service over an in-memory source: exactly which registry
/// calls each scenario makes, and what the caches count.
@Suite struct ContentServiceTests {
    let source: InMemorySource
    let service: ContentService

    init() throws {
        source = try InMemorySource()
        service = ContentService(
            source: source, cacheBytes: 64 << 20, tagTTL: 60, defaultPlatform: .linuxAMD64,
            downloads: source.directory)
    }

    private func ref(_ text: String) throws -> ImageReference { try ImageReference.parse(text) }

    /// Hits and misses of every content-cache kind, and of the tag cache.
    private func counts() -> (hits: [String: Int], misses: [String: Int]) {
        var hits: [String: Int] = [:]
        var misses: [String: Int] = [:]
        for (kind, stats) in service.cache.statistics {
            hits[kind] = stats.hits
            misses[kind] = stats.misses
        }
        let tags = service.tags.statistics
        hits["tag"] = tags.hits
        misses["tag"] = tags.misses
        return (hits.filter { $0.value > 0 }, misses.filter { $0.value > 0 })
    }

    /// The bytes a layer's descriptor embeds are decoded only when asked
    /// for (as `image_files` reads the layers), and taken from the call's
    /// memory share: its text copied and decoded, twice its length. Over
    /// the budget they are refused, as any bytes a call holds.
    @Test func theBytesADescriptorEmbedsAreTakenFromTheCallsMemory() async throws {
        let layer = [UInt8](repeating: 7, count: 30_000)
        let text = Data(layer).base64EncodedString()
        let manifest = source.put(
            "r.test/app",
            [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociManifest),
                "config": [
                    "mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                    "digest": .string("sha256:" + String(repeating: "c", count: 64)),
                ],
                "layers": [
                    [
                        "mediaType": "application/vnd.oci.image.layer.v1.tar", "size": .integer(layer.count),
                        "digest": .string(Digest.of(layer).description), "data": .string(text),
                    ]
                ],
            ])
        let ref = try ref("r.test/app@\(manifest.digest)")
        let listed = try await service.imageLayers(ref, platform: .linuxAMD64)
        #expect(listed.layers.map(\.isEmbedded) == [true])

        let budget = MemoryBudget(limit: 1 << 20)
        let share = MemoryShare(of: budget)
        let embedded = try await MemoryShare.$current.withValue(share) {
            try await service.embeddedBytes(ref, platform: .linuxAMD64, of: [.layer(0)])[.layer(0)]
        }
        #expect(embedded == layer)
        #expect(share.heldBytes >= 2 * text.utf8.count, "\(share.heldBytes)")

        let small = MemoryShare(of: MemoryBudget(limit: text.utf8.count))
        await #expect(throws: MemoryLimitExceeded.self) {
            try await MemoryShare.$current.withValue(small) {
                try await service.embeddedBytes(ref, platform: .linuxAMD64, of: [.layer(0)])
            }
        }
    }

    /// The manifest an index entry embeds is decoded as the entry is
    /// picked and taken from the call's memory share the same way (its
    /// text copied and decoded); over the budget it is refused.
    @Test func theManifestAnIndexEntryEmbedsIsTakenFromTheCallsMemory() async throws {
        let image: JSONValue = [
            "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociManifest),
            "config": [
                "mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                "digest": .string("sha256:" + String(repeating: "c", count: 64)),
            ],
            "layers": [], "annotations": ["padding": .string(String(repeating: "p", count: 30_000))],
        ]
        let bytes = Array(image.jsonText.utf8)
        let text = Data(bytes).base64EncodedString()
        let index = source.put(
            "r.test/app",
            [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociIndex),
                "manifests": [
                    [
                        "mediaType": .string(ManifestMediaType.ociManifest), "size": .integer(bytes.count),
                        "digest": .string(Digest.of(bytes).description), "data": .string(text),
                        "platform": ["os": "linux", "architecture": "amd64"],
                    ]
                ],
            ], mediaType: ManifestMediaType.ociIndex)
        let ref = try ref("r.test/app@\(index.digest)")

        let share = MemoryShare(of: MemoryBudget(limit: 1 << 20))
        let answer = try await MemoryShare.$current.withValue(share) {
            try await service.imageManifestResult(ref, platform: .linuxAMD64)
        }
        #expect(answer["annotations"]?["padding"]?.stringValue?.count == 30_000)
        #expect(share.heldBytes >= 2 * text.utf8.count, "\(share.heldBytes)")
        // The registry was not asked for the entry's manifest (the source does not hold it).
        #expect(source.calls.filter { $0.contains(Digest.of(bytes).description) }.isEmpty, "\(source.calls)")

        service.clear()
        let small = MemoryShare(of: MemoryBudget(limit: text.utf8.count))
        await #expect(throws: MemoryLimitExceeded.self) {
            try await MemoryShare.$current.withValue(small) {
                try await service.imageManifestResult(ref, platform: .linuxAMD64)
            }
        }
    }

    /// Every descriptor asked for is read in one pass over the manifest:
    /// the config's and each layer's embedded bytes, and nothing for one
    /// that embeds none.
    @Test func theBytesDescriptorsEmbedAreReadTogether() async throws {
        let config = Array(#"{"rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
        let layers = (0..<3).map { [UInt8](repeating: UInt8($0), count: 100 + $0) }
        func descriptor(_ bytes: [UInt8], mediaType: String, embedded: Bool) -> JSONValue {
            var object: JSONObject = [
                "mediaType": .string(mediaType), "size": .integer(bytes.count),
                "digest": .string(Digest.of(bytes).description),
            ]
            if embedded { object["data"] = .string(Data(bytes).base64EncodedString()) }
            return .object(object)
        }
        let manifest = source.put(
            "r.test/app",
            [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociManifest),
                "config": descriptor(config, mediaType: "application/vnd.oci.image.config.v1+json", embedded: true),
                "layers": .array(
                    layers.enumerated().map { place, bytes in
                        descriptor(bytes, mediaType: "application/vnd.oci.image.layer.v1.tar", embedded: place != 1)
                    }),
            ])
        let ref = try ref("r.test/app@\(manifest.digest)")
        let read = try await service.embeddedBytes(
            ref, platform: .linuxAMD64, of: [.config, .layer(0), .layer(1), .layer(2)])
        #expect(read == [.config: config, .layer(0): layers[0], .layer(2): layers[2]])
        #expect(try await service.embeddedBytes(ref, platform: .linuxAMD64, of: [.layer(2)]) == [.layer(2): layers[2]])
    }

    @Test func aColdTagFetchIsOneRequestAndOneMiss() async throws {
        source.putImage("r.test/app", tag: "v1")
        _ = try await service.imageManifestResult(try ref("r.test/app:v1"), platform: .linuxAMD64)
        #expect(source.calls == ["GET r.test/app:v1"])
        #expect(counts().misses == ["tag": 1])
        #expect(counts().hits == [:])

        // Warm: the tag cache, then the answer cache; nothing else.
        _ = try await service.imageManifestResult(try ref("r.test/app:v1"), platform: .linuxAMD64)
        #expect(source.calls.count == 1)
        #expect(counts().misses == ["tag": 1])
        #expect(counts().hits == ["tag": 1, "image_manifest": 1])
    }

    @Test func aColdDigestFetchLooksEachCacheUpOnce() async throws {
        let manifest = source.putImage("r.test/app")
        let byDigest = try ref("r.test/app@\(manifest.digest)")
        let answer = try await service.imageManifestResult(byDigest, platform: .linuxAMD64)
        #expect(answer["config"]?["size"] == 2)
        #expect(source.calls == ["GET r.test/app@\(manifest.digest)"])
        #expect(counts().misses == ["image_manifest": 1, "manifest": 1])
        #expect(counts().hits == [:])

        _ = try await service.imageManifestResult(byDigest, platform: .linuxAMD64)
        #expect(source.calls.count == 1)
        #expect(counts().hits == ["image_manifest": 1])
    }

    @Test func serverStatsReportWhatTheCachesCounted() async throws {
        source.putImage("r.test/app", tag: "v1")
        _ = try await service.imageManifestResult(try ref("r.test/app:v1"), platform: .linuxAMD64)
        let sections = JSONValue.object(JSONObject(Statistics.sections(service)))
        #expect(sections["caches"]?["tag"]?["misses"] == 1)
        #expect(sections["caches"]?["tag"]?["hits"] == 0)
        #expect(sections["caches"]?["manifest"]?["hits"] == 0)
        #expect(sections["caches"]?["manifest"]?["misses"] == 0)
        #expect(sections["registryRequests"]?["manifest"] == 1)
    }

    @Test func anIndexResolvesToTheChildOfThePlatform() async throws {
        let amd = source.putImage("r.test/multi", config: "sha256:" + String(repeating: "a", count: 64))
        let arm = source.putImage("r.test/multi", config: "sha256:" + String(repeating: "b", count: 64))
        let entry = { (m: FetchedManifest, arch: String) -> JSONValue in
            [
                "mediaType": .string(m.mediaType), "size": .integer(m.bytes.count),
                "digest": .string(m.digest.description),
                "platform": ["os": "linux", "architecture": .string(arch)],
            ]
        }
        source.put(
            "r.test/multi", tag: "v1",
            [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociIndex),
                "manifests": [entry(amd, "amd64"), entry(arm, "arm64")],
            ],
            mediaType: ManifestMediaType.ociIndex)
        let armPlatform = try Platform("linux/arm64")
        let answer = try await service.imageManifestResult(try ref("r.test/multi:v1"), platform: armPlatform)
        #expect(answer["config"]?["digest"]?.stringValue == "sha256:" + String(repeating: "b", count: 64))
        #expect(source.calls == ["GET r.test/multi:v1", "GET r.test/multi@\(arm.digest)"])

        await #expect(throws: RPCError.self) {
            _ = try await service.imageManifestResult(try ref("r.test/multi:v1"), platform: try Platform("linux/s390x"))
        }
        do {
            _ = try await service.imageManifestResult(try ref("r.test/multi:v1"), platform: try Platform("linux/s390x"))
        } catch let error as RPCError {
            #expect(error.reason == .noMatchingPlatform)
        }
    }

    @Test func concurrentCallersShareOneFetch() async throws {
        source.putImage("r.test/app", tag: "v1")
        source.hold()
        let callers = 8
        let answers = Task { [service] in
            try await withThrowingTaskGroup(of: JSONValue.self) { group in
                for _ in 0..<callers {
                    group.addTask {
                        try await service.imageManifestResult(
                            try ImageReference.parse("r.test/app:v1"), platform: .linuxAMD64)
                    }
                }
                return try await group.reduce(into: [JSONValue]()) { $0.append($1) }
            }
        }
        // Every caller but the first joins the flight under way.
        for _ in 0..<5_000 where service.singleflightJoins < callers - 1 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(service.singleflightJoins == callers - 1)
        source.release()
        let results = try await answers.value
        #expect(results.count == callers)
        #expect(Set(results.map(\.jsonText)).count == 1)
        #expect(source.calls == ["GET r.test/app:v1"])
    }

    @Test func failuresAreNotCached() async throws {
        source.putImage("r.test/app", tag: "v1")
        source.failNext("GET r.test/app:v1", with: RegistryError(.unavailable, reason: .serverError, message: "503"))
        await #expect(throws: RegistryError.self) {
            _ = try await service.imageManifestResult(try ref("r.test/app:v1"), platform: .linuxAMD64)
        }
        _ = try await service.imageManifestResult(try ref("r.test/app:v1"), platform: .linuxAMD64)
        #expect(source.calls == ["GET r.test/app:v1", "GET r.test/app:v1"])
    }

    @Test func aCancelledCallerCancelsItsFetchAndLeavesNothingCached() async throws {
        source.putImage("r.test/app", tag: "v1")
        source.hold()
        let call = Task { [service] in
            try await service.imageManifestResult(try ImageReference.parse("r.test/app:v1"), platform: .linuxAMD64)
        }
        for _ in 0..<5_000 where source.running == 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(source.running == 1)
        call.cancel()
        await #expect(throws: (any Error).self) { _ = try await call.value }
        // The fetch itself stopped: its last caller left.
        for _ in 0..<5_000 where source.running > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(source.running == 0)
        source.release()
        _ = try await service.imageManifestResult(try ref("r.test/app:v1"), platform: .linuxAMD64)
        #expect(source.calls == ["GET r.test/app:v1", "GET r.test/app:v1"])
    }

    @Test func tagExistenceFailsClosed() async throws {
        source.putImage("r.test/app", tag: "v1")
        #expect(try await service.tagExists(try ref("r.test/app:v1")))
        #expect(try await service.tagExists(try ref("r.test/app:v1")))
        #expect(try await !service.tagExists(try ref("r.test/app:missing")))
        source.failNext("HEAD r.test/app:v2", with: RegistryError(.unavailable, reason: .timeout, message: "slow"))
        await #expect(throws: RegistryError.self) { _ = try await service.tagExists(try ref("r.test/app:v2")) }
        #expect(source.calls == ["HEAD r.test/app:v1", "HEAD r.test/app:missing", "HEAD r.test/app:v2"])
    }

    @Test func aBlobIsFetchedOnceAndServedFromTheCache() async throws {
        let digest = source.putBlob(Array("{\"a\":1}".utf8))
        let blobRef = try ref("r.test/app@\(digest)")
        #expect(try await service.blob(blobRef) == Array("{\"a\":1}".utf8))
        #expect(try await service.blob(blobRef) == Array("{\"a\":1}".utf8))
        #expect(source.calls == ["BLOB \(digest)"])
        // The download is not left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: source.directory.path).isEmpty)
    }
}

/// The batch over an in-memory source.
@Suite struct BatchManifestFetcherTests {
    let source: InMemorySource
    let service: ContentService

    init() throws {
        source = try InMemorySource()
        service = ContentService(source: source, cacheBytes: 64 << 20, tagTTL: 60, defaultPlatform: .linuxAMD64)
    }

    private func run(_ refs: [String], workers: Int = 4) async -> (
        order: [String], outcomes: [(String, BatchManifestFetcher.Outcome)]
    ) {
        let reported = Locked([(Int, String, BatchManifestFetcher.Outcome)]())
        let fetcher = BatchManifestFetcher(service: service, maxConcurrency: workers, references: ReferenceCache())
        let order = await fetcher.run(refs, platform: .linuxAMD64) { place, ref, outcome in
            reported.withLock { $0.append((place, ref, outcome)) }
            return true
        }
        let outcomes = reported.withLock { $0 }
        // Each ref is reported with its place among the distinct refs.
        for (place, ref, _) in outcomes { #expect(order.indices.contains(place) && order[place] == ref) }
        return (order, outcomes.map { ($0.1, $0.2) })
    }

    @Test func eachDistinctRefIsFetchedOnceAndReportedOnce() async throws {
        source.putImage("r.test/a", tag: "1")
        source.putImage("r.test/b", tag: "1")
        source.putImage("r.test/c", tag: "1")
        _ = try await service.imageManifestResult(try ImageReference.parse("r.test/c:1"), platform: .linuxAMD64)
        let callsBefore = source.calls.count
        let refs = [
            "r.test/a:1", "r.test/b:1", "r.test/a:1", "NOT A REF", "r.test/missing:1", "r.test/c:1", "r.test/b:1",
        ]
        let (order, outcomes) = await run(refs)
        #expect(order == ["r.test/a:1", "r.test/b:1", "NOT A REF", "r.test/missing:1", "r.test/c:1"])
        #expect(outcomes.map(\.0).sorted() == order.sorted())
        let byRef = Dictionary(uniqueKeysWithValues: outcomes.map { ($0.0, $0.1) })
        #expect((try? byRef["r.test/a:1"]?.get())?["schemaVersion"] == 2)
        #expect((try? byRef["r.test/c:1"]?.get())?["config"]?["size"] == 2)
        if case .failure(let error) = byRef["NOT A REF"] {
            #expect(error.reason == .invalidReference)
        } else {
            Issue.record("NOT A REF")
        }
        if case .failure(let error) = byRef["r.test/missing:1"] {
            #expect(error.reason == .manifestUnknown)
            #expect(error.data["ref"] == "r.test/missing:1")
        } else {
            Issue.record("missing")
        }
        // The cached ref was answered without a call; the others once each.
        #expect(
            source.calls.dropFirst(callsBefore).sorted() == [
                "GET r.test/a:1", "GET r.test/b:1", "GET r.test/missing:1",
            ])
    }

    @Test func theBatchKeepsToItsWorkers() async throws {
        let refs = (0..<24).map { "r.test/app:\($0)" }
        for i in 0..<24 { source.putImage("r.test/app", tag: "\(i)", config: "sha256:" + String(format: "%064x", i)) }
        let (_, outcomes) = await run(refs, workers: 3)
        #expect(outcomes.count == 24)
        #expect(outcomes.allSatisfy { (try? $0.1.get()) != nil })
        #expect(source.calls.count == 24)
        #expect(source.peakConcurrency <= 3)
        #expect(source.peakConcurrency >= 2, "the workers did not overlap at all")
    }

    @Test func aBatchStopsOnceItsReportSaysSo() async throws {
        for i in 0..<50 { source.putImage("r.test/app", tag: "\(i)") }
        let fetcher = BatchManifestFetcher(service: service, maxConcurrency: 2, references: ReferenceCache())
        let reported = Locked(0)
        await fetcher.run((0..<50).map { "r.test/app:\($0)" }, platform: .linuxAMD64) { _, _, _ in
            reported.withLock { count in
                count += 1
                return count < 5
            }
        }
        // The fifth report stops it; the other worker may have been
        // reporting at the same moment, and may have had one more fetch
        // under way.
        #expect((5...6).contains(reported.withLock { $0 }))
        #expect(source.calls.count <= 7)
    }

    @Test func aStreamedBatchWaitsForRoomBeforeEachNotification() async throws {
        for i in 0..<20 { source.putImage("r.test/app", tag: "\(i)") }
        let sink = GatedSink()
        var registry = MethodRegistry()
        registry.register(MethodTable(service: service, maxConcurrency: 4).specs)
        let dispatcher = Dispatcher(registry: registry, sink: sink)
        let refs = (0..<20).map { #""r.test/app:\#($0)""# }.joined(separator: ",")
        let request =
            #"{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifests","params":{"refs":[\#(refs)],"partialResultToken":"t"}}"#
        Array(request.utf8).withUnsafeBytes { dispatcher.receive($0) }
        // Every worker has a manifest and waits: nothing is sent.
        for _ in 0..<5_000 where source.calls.count < 4 { try await Task.sleep(for: .milliseconds(1)) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(sink.sent.count == 0)
        #expect(source.calls.count == 4)
        sink.open()
        for _ in 0..<10_000 where sink.sent.count < 21 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(sink.sent.count == 21)
        #expect(sink.sent.filter { $0.contains(#""method":"$/progress""#) }.count == 20)
    }

    @Test func aCancelledBatchStopsFetching() async throws {
        for i in 0..<50 { source.putImage("r.test/app", tag: "\(i)") }
        source.hold()
        let fetcher = BatchManifestFetcher(service: service, maxConcurrency: 2, references: ReferenceCache())
        let reported = Locked(0)
        let batch = Task { [service] in
            _ = service
            await fetcher.run((0..<50).map { "r.test/app:\($0)" }, platform: .linuxAMD64) { _, _, _ in
                reported.withLock { $0 += 1 }
                return true
            }
        }
        for _ in 0..<5_000 where source.running < 2 { try await Task.sleep(for: .milliseconds(1)) }
        batch.cancel()
        await batch.value
        source.release()
        #expect(source.calls.count == 2)
        #expect(reported.withLock { $0 } == 0)
    }
}

/// A sink whose room is closed until `open()`: messages sent are kept as text.
private final class GatedSink: MessageSink {
    private let state = Locked<(open: Bool, sent: [String], waiters: [CheckedContinuation<Void, Never>])>(
        (false, [], []))

    func send(_ message: [UInt8]) {
        state.withLock { $0.sent.append(String(decoding: message, as: UTF8.self)) }
    }

    func waitForRoom() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = state.withLock { state -> Bool in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var sent: [String] { state.withLock { $0.sent } }
}
