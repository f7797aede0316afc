import Foundation
import JSON
import Locking
import Registry
import Testing
import TestFixtures

/// Images and registries made by an attacker, through the binary: each is
/// answered with a clear error (or the right value), and the server goes
/// on serving with every line it writes valid JSON.
@Suite struct HostileRegistryTests {
    /// A session whose downloads go to a temporary directory of the test's own.
    struct Rig {
        let registry: HostileRegistry
        let session: RPCSession
        let temporary: URL

        init(_ arguments: [String] = []) throws {
            registry = try HostileRegistry()
            temporary = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
            session = try RPCSession(["--retries", "0"] + arguments, environment: ["TMPDIR": temporary.path])
        }

        func ref(_ repository: String, _ digest: Digest) -> JSONValue {
            .string("\(registry.host)/\(repository)@\(digest)")
        }

        /// Files (not directories) anywhere under the server's temporary directory.
        var leftoverFiles: [String] {
            let walker = FileManager.default.enumerator(atPath: temporary.path)
            var files: [String] = []
            while let path = walker?.nextObject() as? String {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(
                    atPath: temporary.appendingPathComponent(path).path, isDirectory: &isDirectory),
                    !isDirectory.boolValue
                {
                    files.append(path)
                }
            }
            return files
        }

        /// The server answers the next request and has written only JSON.
        func expectStillServing(_ comment: Comment? = nil) async throws {
            let stats = try await session.call("server.stats", [])
            #expect(stats["result"]?["inFlight"] != nil, comment)
            let unparseable = session.process.messages.filter { $0.stringValue?.hasPrefix("unparseable") == true }
            #expect(unparseable.isEmpty, "stdout held lines that are not JSON: \(unparseable.prefix(2))")
        }

        func close() async {
            await session.close()
            registry.stop()
            try? FileManager.default.removeItem(at: temporary)
        }
    }

    /// The layers `image_files` takes (`ContentService.maxImageLayers`, in SECURITY.md).
    static let maxImageLayers = 1000

    /// `image_files` downloads every layer an image lists: one that lists
    /// more than it takes is refused before any is downloaded.
    @Test(arguments: [Self.maxImageLayers, Self.maxImageLayers + 1])
    func anImageListingTooManyLayersIsRefusedBeforeAnyDownload(layers: Int) async throws {
        let rig = try Rig()
        var tar = TarBuilder()
        tar.file("etc/wanted.yaml", "a: 1")
        let image = rig.registry.image(
            "app", layers: [[UInt8]](repeating: Compressors.gzip(tar.archive), count: layers))
        let answer = try await rig.session.call("ec.oci.image_files", [rig.ref("app", image), ["etc"]])
        let blobRequests = rig.registry.requests.filter { $0.path.contains("/blobs/") }.count
        if layers > Self.maxImageLayers {
            #expect(answer.errorReason == "too_many_layers", "\(answer.jsonText)")
            #expect(answer.errorCode == -32005)
            #expect(blobRequests == 0)
        } else {
            #expect(
                answer["result"]?["etc/wanted.yaml"] == ["a": 1], Comment(rawValue: String(answer.jsonText.prefix(300)))
            )
            #expect(blobRequests >= 1)
        }
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test(arguments: ["pax", "base256", "paxLength"])
    func craftedTarSizesAreErrorsNotCrashes(kind: String) async throws {
        let rig = try Rig()
        var tar = TarBuilder()
        switch kind {
        case "pax":
            tar.paxHeader(TarBuilder.paxRecord("size", "9223372036854775807"))
            tar.file("skipped", "x")
        case "base256":
            tar.file("skipped", base256Size: UInt64(Int64.max))
        default:
            tar.paxHeader(Array("9223372036854775800 path=x\n".utf8))
            tar.file("f", "x")
        }
        tar.file("wanted.yaml", "a: 1")
        let digest = rig.registry.blob("app", Compressors.gzip(tar.archive))
        let answer = try await rig.session.call("ec.oci.blob_files", [rig.ref("app", digest), ["wanted.yaml"]])
        #expect([-32005, -32006].contains(answer.errorCode ?? 0), "\(answer.jsonText)")
        #expect(["entry_too_large", "corrupt_archive"].contains(answer.errorReason ?? ""), "\(answer.jsonText)")
        try await rig.expectStillServing()
        #expect(rig.leftoverFiles.isEmpty)
        await rig.close()
    }

    @Test func aYAMLAliasBombIsRefusedWithASmallAnswer() async throws {
        let rig = try Rig()
        var yaml = "a: &big \"" + String(repeating: "x", count: 64 << 10) + "\"\nb:\n"
        for _ in 0..<1000 { yaml += "- *big\n" }
        var tar = TarBuilder()
        tar.file("bomb.yaml", yaml)
        let digest = rig.registry.blob("app", tar.archive)
        let answer = try await rig.session.call("ec.oci.blob_files", [rig.ref("app", digest), ["bomb.yaml"]])
        #expect(answer.errorCode == -32005, "\(answer.jsonText.prefix(300))")
        #expect(answer.errorReason == "yaml_too_large")
        #expect(rig.session.process.stdout.count < 10_000)
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func floatsOutOfRangeAreStringsAndTheOutputStaysJSON() async throws {
        let rig = try Rig()
        var tar = TarBuilder()
        tar.file("x.yaml", "x: 1e400\n")
        let digest = rig.registry.blob("app", tar.archive)
        let result = try await rig.session.result("ec.oci.blob_files", [rig.ref("app", digest), ["x.yaml"]])
        #expect(result == ["x.yaml": ["x": "1e400"]])
        // Cached, and still JSON the second time.
        #expect(try await rig.session.result("ec.oci.blob_files", [rig.ref("app", digest), ["x.yaml"]]) == result)
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func pathsWithNULsDoNotShareACacheEntry() async throws {
        let rig = try Rig()
        var tar = TarBuilder()
        tar.file("ok.yaml", "a: 1")
        tar.file("zz", "b: 2")
        let digest = rig.registry.blob("app", tar.archive)
        let both = try await rig.session.result("ec.oci.blob_files", [rig.ref("app", digest), ["ok.yaml", "zz"]])
        #expect(both == ["ok.yaml": ["a": 1], "zz": ["b": 2]])
        let odd = try await rig.session.result("ec.oci.blob_files", [rig.ref("app", digest), ["ok.yaml\u{0}zz"]])
        #expect(odd == [:])
        await rig.close()
    }

    @Test func aLongPathLayerIsRefused() async throws {
        let rig = try Rig()
        // One entry of a 256 KiB path of `a/` segments: a few hundred bytes of gzip.
        var tar = TarBuilder()
        tar.file(String(repeating: "a/", count: 128 << 10) + "x.yaml", "v: 1")
        let image = rig.registry.image("app", layers: [Compressors.gzip(tar.archive)])
        let answer = try await rig.session.call("ec.oci.image_files", [rig.ref("app", image), ["a"]])
        #expect(answer.errorReason == "name_too_long", "\(answer.jsonText)")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// An outage is an error, never "no signatures". A 400 or 406, from
    /// which the original falls back to the referrers tag (the spec falls
    /// back only on a 404), is an error of its own reason, which a policy
    /// must not let be undefined as an outage (it was `server_error`).
    @Test(arguments: [503, 500, 429, 400, 406])
    func referrersFailClosed(status: Int) async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        rig.registry.script {
            $0.path.contains("/referrers/") ? HostileRegistry.registryError(status, "UNAVAILABLE") : nil
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorCode == -32004, "\(answer.jsonText)")
        let fallsBackInTheOriginal = status == 400 || status == 406
        #expect((answer.errorReason == "referrers_unsupported") == fallsBackInTheOriginal, "\(answer.jsonText)")
        await rig.close()
    }

    @Test func referrersFallBackOnlyOn404AndAFallbackOutageIsAnError() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        // No referrers API (404) and no fallback tag (404): an empty list.
        #expect(try await rig.session.result("ec.oci.image_referrers", [rig.ref("app", image)]) == [])
        // No referrers API, and the fallback tag answers 503: an error.
        rig.registry.script {
            $0.path.contains("/manifests/sha256-") ? HostileRegistry.registryError(503, "UNAVAILABLE") : nil
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorCode == -32004, "\(answer.jsonText)")
        await rig.close()
    }

    @Test func tagRefsFailClosedOnAnythingButA404() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        let signature = rig.registry.manifest("app", tag: "sha256-\(image.hex).sig", Array("{}".utf8))
        _ = signature
        #expect(
            try await rig.session.result("ec.oci.image_tag_refs", [rig.ref("app", image)])
                == [.string("\(rig.registry.host)/app:sha256-\(image.hex).sig")])
        rig.registry.script { $0.path.hasSuffix(".att") ? HostileRegistry.registryError(503, "UNAVAILABLE") : nil }
        let answer = try await rig.session.call("ec.oci.image_tag_refs", [rig.ref("app", image)])
        #expect(answer.errorCode == -32004, "\(answer.jsonText)")
        await rig.close()
    }

    /// The layer below is downloaded while the top one is read; the top
    /// one turns out corrupt near its end (its checksum does not match).
    /// The call fails, and the layer downloaded ahead is not left on disk
    /// nor held in the downloads' budget.
    @Test func aLayerDownloadedAheadOfAFailedReadLeavesNoFile() async throws {
        let rig = try Rig()
        var below = TarBuilder()
        below.file("etc/below.yaml", "a: 1")
        var top = TarBuilder()
        top.file("etc/top.yaml", "b: 2")
        top.file("var/zeros", [UInt8](repeating: 0, count: 16 << 20))
        var corrupt = Compressors.gzip(top.archive)
        corrupt[corrupt.count - 8] ^= 0xFF
        let image = rig.registry.image("app", layers: [Compressors.gzip(below.archive), corrupt])
        let answer = try await rig.session.call("ec.oci.image_files", [rig.ref("app", image), ["etc"]])
        #expect(answer.errorReason == "corrupt_archive", "\(answer.jsonText)")
        let stats = try await rig.session.result("server.stats", [])
        #expect(stats["downloadsHeld"]?["used"] == 0)
        #expect(rig.leftoverFiles.isEmpty, "\(rig.leftoverFiles)")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// A layer of 1 MiB that arrives a byte a second is read as it arrives
    /// (`ContentService.followedBlobBytes`); the call is cancelled while its
    /// reader waits for the next bytes, and is answered as cancelled at
    /// once, leaving no file.
    @Test func aCallCancelledWhileItsLayerIsReadAsItArrivesEndsAtOnce() async throws {
        // No idle timeout ends the download first, however slow the machine.
        let rig = try Rig(["--timeout", "600s"])
        var tar = TarBuilder()
        tar.file("etc/a.yaml", "a: 1")
        var generator = SystemRandomNumberGenerator()
        tar.file("var/noise", (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let layer = Compressors.gzip(tar.archive)
        let image = rig.registry.image("app", layers: [layer])
        let digest = Digest.of(layer)
        rig.registry.script {
            $0.path.hasSuffix("/blobs/\(digest)")
                ? .drip(status: 200, headers: [], body: layer, interval: 1)
                : nil
        }
        let id = rig.session.send("ec.oci.image_files", [rig.ref("app", image), ["etc"]])
        // Cancelled once the layer was asked for and its first bytes written.
        func layerArriving() -> Bool {
            rig.registry.requests.contains { $0.path.hasSuffix("/blobs/\(digest)") }
                && rig.leftoverFiles.contains { $0.contains("blob-") }
        }
        for _ in 0..<1200 where !layerArriving() { try await Task.sleep(for: .milliseconds(100)) }
        try await Task.sleep(for: .seconds(2))
        rig.session.notify("$/cancelRequest", ["id": .integer(id)])
        let answer = try await rig.session.response(id)
        #expect(answer.errorCode == -32800, "\(answer.jsonText)")
        try await rig.expectStillServing()
        let stats = try await rig.session.result("server.stats", [])
        #expect(stats["inFlight"] == 0, "\(stats.jsonText)")
        #expect(rig.leftoverFiles.isEmpty, "\(rig.leftoverFiles)")
        await rig.close()
    }

    @Test func anEndlessBlobStopsAtTheLimitAndLeavesNoFile() async throws {
        let rig = try Rig()
        var tar = TarBuilder()
        tar.file("a.yaml", "a: 1")
        let layer = Compressors.gzip(tar.archive)
        let image = rig.registry.image("app", layers: [layer])
        let digest = Digest.of(layer)
        // The layer streams without end (a manifest declaring its true size).
        rig.registry.script {
            $0.path.hasSuffix("/blobs/\(digest)") ? .endless(status: 200, headers: [], limit: 64 << 20) : nil
        }
        let answer = try await rig.session.call("ec.oci.image_files", [rig.ref("app", image), ["."]])
        #expect(answer.errorCode == -32005, "\(answer.jsonText)")
        #expect(answer.errorReason == "blob_too_large")
        #expect(rig.leftoverFiles.isEmpty, "\(rig.leftoverFiles)")
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func aManifestOverFourMiBIsRefused() async throws {
        let rig = try Rig()
        let padding = String(repeating: " ", count: 4 << 20)
        let digest = rig.registry.manifest(
            "app", tag: "big", Array(#"{"schemaVersion":2,"layers":[]\#(padding)}"#.utf8))
        for ref in [JSONValue.string("\(rig.registry.host)/app:big"), rig.ref("app", digest)] {
            let answer = try await rig.session.call("ec.oci.image_manifest", [ref])
            #expect(answer.errorCode == -32005, "\(answer.jsonText)")
            #expect(answer.errorReason == "manifest_too_large")
        }
        try await rig.expectStillServing()
        await rig.close()
    }

    /// A manifest under the 4 MiB limit made of empty descriptors would be
    /// an answer of 126 MiB (every descriptor is written with all its
    /// keys): refused as `manifest_too_large` by `image_manifest`,
    /// `image_index` and `image_referrers`, and left out by `image_manifests`.
    @Test func aManifestOfEmptyDescriptorsIsRefusedNotAmplified() async throws {
        let rig = try Rig()
        let empties = Array(repeating: "{}", count: (4 << 20) / 3 - 100).joined(separator: ",")
        let image = rig.registry.manifest(
            "app", tag: "empties", Array(#"{"schemaVersion":2,"layers":[\#(empties)]}"#.utf8))
        let index = rig.registry.manifest(
            "app", tag: "index", mediaType: ManifestMediaType.ociIndex,
            Array(#"{"schemaVersion":2,"manifests":[\#(empties)]}"#.utf8))
        // The referrers API answers 404 here, so the referrers tag is read.
        _ = rig.registry.manifest(
            "app", tag: "\(image.algorithm.rawValue)-\(image.hex)", mediaType: ManifestMediaType.ociIndex,
            Array(#"{"schemaVersion":2,"manifests":[\#(empties)]}"#.utf8))
        let calls: [(String, [JSONValue])] = [
            ("ec.oci.image_manifest", [rig.ref("app", image)]),
            ("ec.oci.image_manifest", [.string("\(rig.registry.host)/app:empties")]),
            ("ec.oci.image_index", [rig.ref("app", index)]),
            ("ec.oci.image_referrers", [rig.ref("app", image)]),
        ]
        for (method, params) in calls {
            let answer = try await rig.session.call(method, .array(params))
            #expect(answer.errorCode == -32005, "\(method): \(answer.jsonText.prefix(300))")
            #expect(answer.errorReason == "manifest_too_large", "\(method)")
        }
        // The batch leaves a ref it could not answer out of its result.
        let batch = try await rig.session.call("ec.oci.image_manifests", [[rig.ref("app", image)]])
        #expect(batch["result"] == [:], "\(batch.jsonText.prefix(300))")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// Many calls at once on large manifests, each shaped into an answer
    /// four times its size: what the process holds at its peak stays
    /// within the memory budget and its own (code, runtime, threads).
    /// Measured with 24 calls at 128 MiB: 123 MiB; 175 MiB when a large
    /// block freed was kept by malloc rather than unmapped; and with 64
    /// calls on 3.8 MB manifests at 256 MiB (`bench/run memory`), 0.47-0.52
    /// GB before shaping was counted.
    @Test func manyCallsOnLargeManifestsHoldWhatTheBudgetAllows() async throws {
        let budget = 128 << 20
        let rig = try Rig(["--max-memory-bytes", "\(budget)", "--cache-bytes", "0"])
        // 60,000 empty layers (an answer of 5.6 MB), padded to 1.9 MB.
        let head = #"{"schemaVersion":2,"layers":["# + Array(repeating: "{}", count: 60_000).joined(separator: ",")
        let manifest = Array(
            (head + #"],"annotations":{"p":""# + String(repeating: "x", count: 1_700_000) + #""}}"#).utf8)
        let calls = 24
        for tag in 0..<calls { rig.registry.manifest("app", tag: "t\(tag)", manifest) }
        let ids = (0..<calls).map { tag in
            rig.session.send("ec.oci.image_manifest", [.string("\(rig.registry.host)/app:t\(tag)")])
        }
        var answered = 0
        for id in ids {
            let answer = try await rig.session.response(id)
            if answer["result"] != nil {
                answered += 1
            } else {
                #expect(answer.errorReason == "memory_limit", "\(answer.jsonText.prefix(300))")
            }
        }
        let peak = ProcessUsage.peakRSSKiB(rig.session.process.process.processIdentifier) << 10
        print(
            "\(calls) calls on 1.9 MB manifests, \(budget >> 20) MiB budget: \(answered) answered, peak \(peak >> 20) MiB"
        )
        #expect(answered > 0)
        #expect(peak > 0 && peak <= budget + (32 << 20), "peak \(peak >> 20) MiB")
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func responseHeadersWithoutEndAreRefused() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        // 20,000 distinct headers: some 600 KB before any body.
        let headers = (0..<20_000).map { ("X-Padding-\($0)", String(repeating: "p", count: 16)) }
        rig.registry.script {
            $0.path.contains("/manifests/") ? .response(status: 200, headers: headers, body: []) : nil
        }
        let answer = try await rig.session.call("ec.oci.image_manifest", [rig.ref("app", image)])
        #expect(answer.errorCode == -32005, "\(answer.jsonText.prefix(300))")
        #expect(answer.errorReason == "headers_too_large")
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func aBlobHeldInMemoryIsBounded() async throws {
        let rig = try Rig()
        let digest = Digest.of(Array("never served whole".utf8))
        rig.registry.script {
            $0.path.hasSuffix("/blobs/\(digest)") ? .endless(status: 200, headers: [], limit: 256 << 20) : nil
        }
        let answer = try await rig.session.call("ec.oci.blob", ["ref": rig.ref("app", digest), "encoding": "base64"])
        #expect(answer.errorCode == -32005, "\(answer.jsonText)")
        #expect(answer.errorReason == "blob_too_large")
        #expect(rig.leftoverFiles.isEmpty)
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func aDrippingRegistryIsCutOffByTheRequestDeadline() async throws {
        let rig = try Rig(["--timeout", "2s", "--request-timeout", "3s"])
        let blob = Array(String(repeating: "x", count: 2_000).utf8)
        let digest = rig.registry.blob("app", blob)
        // A byte every 50 ms (100 s in all): never silent for 2 s, but under
        // the minimum rate.
        rig.registry.script {
            $0.path.hasSuffix("/blobs/\(digest)") ? .drip(status: 200, headers: [], body: blob, interval: 0.05) : nil
        }
        let answer = try await rig.session.call("ec.oci.blob", [rig.ref("app", digest)])
        #expect(answer.errorReason == "timeout", "\(answer.jsonText)")
        // Cut off at the 3 s deadline (some 60 bytes; the whole drip is
        // 2,000), as the registry's own thread counts it: this test's
        // polling for the answer, which the full suite delays (past 36 s
        // once), does not count.
        let waited = ContinuousClock.now + .seconds(60)
        while rig.registry.server.drips.isEmpty, ContinuousClock.now < waited {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(
            rig.registry.server.drips.count == 1 && rig.registry.server.drips[0] < 600, "\(rig.registry.server.drips)")
        #expect(rig.leftoverFiles.isEmpty, "\(rig.leftoverFiles)")
        await rig.close()
    }

    @Test func aRegistryStillAnsweringWhenTheRequestsTimeRunsOutIsALimitNotTheRegistrysFailure() async throws {
        // 400 KB at 4 KB every 20 ms (some 200 KB/s, two seconds in all):
        // steady, never silent, far above the minimum rate, as a large blob
        // comes; the request may take one second.
        let rig = try Rig(["--timeout", "5s", "--request-timeout", "1s"])
        let blob = Array(String(repeating: "z", count: 400_000).utf8)
        let digest = rig.registry.blob("app", blob)
        rig.registry.script {
            $0.path.hasSuffix("/blobs/\(digest)")
                ? .drip(status: 200, headers: [], body: blob, interval: 0.02, step: 4_000) : nil
        }
        let answer = try await rig.session.call("ec.oci.blob", [rig.ref("app", digest)])
        // The original reads the blob however long it takes: running out of
        // time is this server's limit (-32005, which fails a policy), not
        // the registry's failure (-32004 timeout, which a policy may let be
        // undefined, and so the blob absent).
        #expect(answer.errorCode == -32005, "\(answer.jsonText)")
        #expect(answer.errorReason == "request_timeout")
        #expect(answer["error"]?["message"]?.stringValue?.contains("--request-timeout") == true, "\(answer.jsonText)")
        #expect(rig.leftoverFiles.isEmpty, "\(rig.leftoverFiles)")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// A challenge whose own body is longer than the small layer asked for
    /// is a challenge: answered with the credentials, and the layer read.
    /// libcurl refuses a body declared past a download's limit whatever
    /// its status, and the 401 was taken for `blob_too_large`.
    @Test func aChallengeLongerThanTheBlobAskedForIsAnswered() async throws {
        let registry = try HostileRegistry()
        let config = try DockerConfigDirectory.make(host: registry.host, user: "alice", password: "s3cret")
        defer { try? FileManager.default.removeItem(at: config) }
        let session = try RPCSession(["--retries", "0"], environment: ["DOCKER_CONFIG": config.path])
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        let layer = Compressors.gzip(tar.archive)
        let image = registry.image("app", layers: [layer])
        let challenge = Array(
            (#"{"errors":[{"code":"UNAUTHORIZED","message":""# + String(repeating: "x", count: 4_000) + #""}]}"#).utf8)
        registry.script { request in
            guard request.path.hasSuffix("/blobs/\(Digest.of(layer))"), request.headers["authorization"] == nil else {
                return nil
            }
            return .response(
                status: 401,
                headers: [("WWW-Authenticate", #"Basic realm="r""#), ("Content-Type", "application/json")],
                body: challenge)
        }
        let answer = try await session.call(
            "ec.oci.image_files", [.string("\(registry.host)/app@\(image)"), ["etc"]])
        #expect(answer["result"] == ["etc/policy.yaml": ["allowed": false]], "\(answer.jsonText)")
        await session.close()
        registry.stop()
    }

    @Test func downloadsArePrivateToTheServer() async throws {
        let rig = try Rig(["--timeout", "30s"])
        let blob = Array(String(repeating: "y", count: 100).utf8)
        let digest = rig.registry.blob("app", blob)
        rig.registry.script {
            $0.path.hasSuffix("/blobs/\(digest)") ? .drip(status: 200, headers: [], body: blob, interval: 0.05) : nil
        }
        // Watched from an OS thread of its own: the task pool may be busy
        // with other tests for longer than the download lasts.
        let seen = Locked<[String: Int]>([:])
        let done = Locked(false)
        let directory = rig.temporary
        // Each level is listed and each entry `lstat`ed, with its path made
        // here from the names and its type kept.
        //
        // The thread sanitizer's runtime, as it starts, makes
        // `tsan.rodata.<pid>` (0600) in `$TMPDIR` and unlinks it at once
        // (`strace` of the sanitizer-built server: `openat` with `O_EXCL`,
        // then `unlinkat`): a server built with it has that file there for
        // a moment, which two runs of the sanitizer pass have seen. That
        // one name, with the server's pid, is not counted.
        let runtimesOwn = "tsan.rodata.\(rig.session.process.process.processIdentifier)"
        let watcher = Thread {
            func look(_ relative: String) {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path + relative)) ?? []
                for name in names where !(relative.isEmpty && name == runtimesOwn) {
                    let path = relative.isEmpty ? name : String(relative.dropFirst()) + "/" + name
                    var info = stat()
                    guard lstat(directory.path + "/" + path, &info) == 0 else { continue }
                    let isDirectory = info.st_mode & S_IFMT == S_IFDIR
                    seen.withLock { $0[path + (isDirectory ? "/" : "")] = Int(info.st_mode & 0o777) }
                    if isDirectory { look("/" + path) }
                }
            }
            while !done.withLock({ $0 }) {
                look("")
                usleep(5_000)
            }
        }
        watcher.start()
        let id = rig.session.send("ec.oci.blob", [rig.ref("app", digest)])
        let answer = try await rig.session.response(id)
        done.withLock { $0 = true }
        let modes = seen.withLock { $0 }.sorted { $0.key < $1.key }
        #expect(answer["result"] == .string(String(repeating: "y", count: 100)))
        // The server's directory (0700, named with a trailing slash here)
        // and the download in it (0600), nothing else.
        #expect(modes.count == 2, "\(modes) \(rig.session.process.stderr)")
        for (path, mode) in modes {
            let isDirectory = path.hasSuffix("/")
            #expect(isDirectory == !path.dropLast().contains("/"), "\(path): a file outside the server's directory")
            #expect(mode == (isDirectory ? 0o700 : 0o600), "\(path): \(String(mode, radix: 8))")
        }
        #expect(rig.leftoverFiles.isEmpty)
        await rig.close()
    }

    /// Downloads are made only where no other user can swap them (a layer
    /// is read back from its file once checked): a `TMPDIR` every user can
    /// write, not sticky, refuses them with a clear error; a sticky one, as
    /// `/tmp` is, is used.
    @Test func downloadsAreRefusedInATemporaryDirectoryOtherUsersCanChange() async throws {
        let rig = try Rig()
        let blob = Array("a private layer".utf8)
        let digest = rig.registry.blob("app", blob)
        #expect(chmod(rig.temporary.path, 0o777) == 0)
        let refused = try await rig.session.call("ec.oci.blob", [rig.ref("app", digest)])
        #expect(refused["error"]?["data"]?["reason"] == "io_error", "\(refused)")
        // This machine's failure, not the registry's (-32004): a policy
        // that lets a registry's failure be undefined must not let this.
        #expect(refused["error"]?["code"] == -32603, "\(refused)")
        #expect(refused["error"]?["message"]?.stringValue?.contains("is writable by every user") == true)
        #expect(chmod(rig.temporary.path, 0o1777) == 0)
        let answered = try await rig.session.call("ec.oci.blob", [rig.ref("app", digest)])
        #expect(answered["result"] == .string("a private layer"), "\(answered)")
        try await rig.expectStillServing()
        await rig.close()
    }
}

/// A decompression bomb: 4 MB of gzip that inflates to 4 GiB inside one
/// tar entry. The budget refuses it; cancellation stops it within a chunk;
/// the server answers other calls meanwhile.
@Suite(.serialized) struct DecompressionBombTests {
    /// A gzip layer: a tar header announcing a 4 GiB file, then 4,096 gzip
    /// members of 1 MiB of zeros each (concatenated members are one stream).
    static let bomb = bomb(gibibytes: 4)

    /// A bomb of `gibibytes` GiB of zeros in one tar entry.
    static func bomb(gibibytes: Int) -> [UInt8] {
        var header = TarBuilder()
        header.file("policy/huge.yaml", base256Size: UInt64(gibibytes) << 30)
        var layer = Compressors.gzip(header.bytes)
        let member = Compressors.gzip([UInt8](repeating: 0, count: 1 << 20))
        layer.reserveCapacity(layer.count + member.count * gibibytes << 10)
        for _ in 0..<gibibytes << 10 { layer += member }
        return layer
    }

    @Test func theDecompressionBudgetRefusesABomb() async throws {
        let rig = try HostileRegistryTests.Rig(["--max-decompressed-bytes", "64MiB"])
        let image = rig.registry.image("app", layers: [Self.bomb])
        let started = ContinuousClock.now
        let answer = try await rig.session.call("ec.oci.image_files", [rig.ref("app", image), ["policy"]])
        #expect(answer.errorCode == -32005, "\(answer.jsonText)")
        #expect(answer.errorReason == "decompression_limit")
        print("bomb refused by a 64 MiB budget in \(ContinuousClock.now - started)")
        #expect(rig.leftoverFiles.isEmpty)
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func whileABombIsReadTheServerAnswersAndCancellationStopsIt() async throws {
        // 64 GiB, a minute or more of inflating: still read whenever the
        // stats call below is answered, however slow the machine.
        let rig = try HostileRegistryTests.Rig(["--max-decompressed-bytes", "128GiB"])
        let image = rig.registry.image("app", layers: [Self.bomb(gibibytes: 64)])
        let pid = rig.session.process.process.processIdentifier
        let id = rig.session.send("ec.oci.image_files", [rig.ref("app", image), ["policy"]])
        // Wait until the server is busy inflating.
        var busy = false
        for _ in 0..<100 {
            let before = ProcessUsage.cpuSeconds(pid)
            try await Task.sleep(for: .milliseconds(100))
            if ProcessUsage.cpuSeconds(pid) - before > 0.05 { busy = true; break }
        }
        #expect(busy, "the bomb was not being read")
        let statsStarted = ContinuousClock.now
        let stats = try await rig.session.call("server.stats", [])
        let statsLatency = ContinuousClock.now - statsStarted
        // Answered while the bomb is read, not after: the call is in flight
        // (the bomb is gigabytes; how fast is the bench's business).
        #expect(stats["result"]?["inFlight"] == 1, "\(stats.jsonText)")
        rig.session.notify("$/cancelRequest", ["id": .integer(id)])
        let cancelled = try await rig.session.response(id, seconds: 60)
        #expect(cancelled["error"]?["code"] == -32800, "\(cancelled.jsonText)")
        // From 100 ms after the cancel's answer, the process is idle.
        try await Task.sleep(for: .milliseconds(100))
        let before = ProcessUsage.cpuSeconds(pid)
        try await Task.sleep(for: .seconds(1))
        let after = ProcessUsage.cpuSeconds(pid)
        #expect(after - before < 0.1, "\(after - before) s of CPU in the second after cancelling")
        print(
            "bomb: server.stats in \(statsLatency) while inflating; CPU \(after - before) s in the second after cancel")
        #expect(rig.leftoverFiles.isEmpty)
        await rig.close()
    }
}

/// The cache budget counts what values occupy: for parsed blobs of several
/// shapes, what `server.stats` says the cache holds is within 2x of what
/// the allocator gets back when the cache is cleared (`heapBytes`). The
/// RSS is printed beside it but not judged: for the same value, clearing
/// gave back 22 MB of RSS in some runs and 59 MB in others, with malloc
/// reporting all 59 MB free in both (`malloc_trim` does not shrink a thread
/// arena's top chunk; bench/README.md has the measurements).
@Suite(.serialized) struct MemoryAccountingTests {
    static let shapes: [(String, String)] = [
        ("small numbers", "[" + Array(repeating: "1", count: 2_000_000).joined(separator: ",") + "]"),
        (
            "long strings",
            "[" + (0..<200_000).map { #""a string long enough to live on the heap \#($0)""# }.joined(separator: ",")
                + "]"
        ),
        ("many keys", "{" + (0..<300_000).map { #""key-\#($0)":{"n":\#($0),"ok":true}"# }.joined(separator: ",") + "}"),
    ]

    @Test(arguments: 0..<3)
    func cachedValuesAreChargedWhatTheyOccupy(shape: Int) async throws {
        let (name, text) = Self.shapes[shape]
        let rig = try HostileRegistryTests.Rig(["--cache-bytes", "2GiB"])
        let digest = rig.registry.blob("app", Array(text.utf8))
        let pid = rig.session.process.process.processIdentifier
        _ = try await rig.session.result("ec.oci.parsed_blob", [rig.ref("app", digest)])
        // Once its task has ended, the cache holds the only reference
        // (`server.stats` does not count itself in flight).
        var stats = try await rig.session.result("server.stats", [])
        for _ in 0..<1000 where stats["inFlight"] != 0 {
            try await Task.sleep(for: .milliseconds(10))
            stats = try await rig.session.result("server.stats", [])
        }
        #expect(stats["inFlight"] == 0, "\(name): the parse never ended")
        let used = stats["cacheBytes"]?["used"]?.intValue ?? 0
        let heapBefore = stats["heapBytes"]?.intValue ?? 0
        let rssBefore = ProcessUsage.rssKiB(pid)
        _ = try await rig.session.result("server.clearCache", [])
        let heapAfter = try await rig.session.result("server.stats", [])["heapBytes"]?.intValue ?? 0
        let freed = heapBefore - heapAfter
        let rssFreed = rssBefore - ProcessUsage.rssKiB(pid)
        print(
            "memory accounting, \(name): charged \(used / 1024) KiB, heap freed \(freed / 1024) KiB, RSS freed \(rssFreed) KiB"
        )
        #expect(heapBefore > 0, "\(name): server.stats has no heapBytes")
        #expect(used >= freed / 2 && used <= freed * 2, "\(name): charged \(used) bytes, clearing freed \(freed)")
        await rig.close()
    }
}
