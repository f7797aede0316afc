import Foundation
import JSON
import Locking
import Registry
import Testing
import TestFixtures

/// Layers of 1 MiB or more are read as they download, and `image_files` downloads the layer
/// below the one it reads once that one is downloaded, one download at a
/// time: what that changes must not show in the answers, the requests, or
/// what is left on disk, and bytes read before they are verified never
/// make an answer.
@Suite(.needsDockerRegistry) struct BlobsReadAsTheyDownloadTests {
    /// Three gzip layers of 2 MiB that do not compress, each with its own
    /// policy file, bottom first.
    static func threeLayers() -> [(bytes: [UInt8], mediaType: String)] {
        (0..<3).map { index in
            var generator = SystemRandomNumberGenerator()
            var tar = TarBuilder()
            tar.file("etc/policy/layer\(index).yaml", "layer: \(index)")
            tar.file("var/noise", (0..<(2 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            return (Compressors.gzip(tar.archive), Expected.gzipLayer)
        }
    }

    /// Room for one layer on disk, not two: the layer below is not asked
    /// for while one is read (no request made for nothing), and is
    /// downloaded at its turn; with room for two, the same answer from the
    /// same requests.
    @Test(arguments: ["3MiB", "8MiB"])
    func aLayerWaitsForItsTurnWhenTheDownloadsHaveNoRoomForIt(room: String) async throws {
        let rig = try await Rig.start(arguments: ["--max-download-bytes", room])
        let image = try await rig.registry.pushImage("ahead", "v1", layers: Self.threeLayers())
        let files = try await rig.session.result(
            "ec.oci.image_files", [.string(rig.ref("ahead", image.digest)), ["etc/policy"]])
        #expect(
            files == [
                "etc/policy/layer0.yaml": ["layer": 0], "etc/policy/layer1.yaml": ["layer": 1],
                "etc/policy/layer2.yaml": ["layer": 2],
            ])
        let stats = try await rig.session.result("server.stats", [])
        // The config and each layer once.
        #expect(stats["registryRequests"]?["blob"] == 4, "\(stats.jsonText)")
        #expect(stats["downloadsHeld"]?["used"] == 0)
        await rig.stop()
    }

    /// A mirror serves other bytes under a layer's digest (an archive that
    /// reads to its end: what it holds was read as it arrived), then fails
    /// its digest; the registry serves the layer. The answer is the
    /// registry's layer.
    @Test func aForgedLayerReadAsItArrivedNeverMakesTheAnswer() async throws {
        let upstream = try await TestRegistry()
        let mirror = try HostileRegistry()
        defer {
            upstream.stop()
            mirror.stop()
        }
        // Past `ContentService.followedBlobBytes`, and of one length.
        let filler = [UInt8](repeating: 0x61, count: 2 << 20)
        var truth = TarBuilder()
        truth.file("etc/policy.yaml", "allow: false")
        truth.file("var/filler", filler)
        var forged = TarBuilder()
        forged.file("etc/policy.yaml", "allow: true ")
        forged.file("var/filler", filler)
        let plainLayer = "application/vnd.oci.image.layer.v1.tar"
        let image = try await upstream.pushImage("app", "v1", layers: [(truth.archive, plainLayer)])
        let layer = Digest.of(truth.archive)
        let forgedBytes = forged.archive
        mirror.script {
            $0.path.hasSuffix("/blobs/\(layer)")
                ? .response(status: 200, headers: [], body: forgedBytes) : nil
        }
        let session = try RPCSession(["--mirror", "\(upstream.host)=\(mirror.host)"])
        let files = try await session.result(
            "ec.oci.image_files", [.string("\(upstream.host)/app@\(image.digest)"), ["etc"]])
        #expect(files == ["etc/policy.yaml": ["allow": false]])
        #expect(mirror.requests.contains { $0.path.hasSuffix("/blobs/\(layer)") }, "the mirror was asked")
        await session.close()
    }

    /// `blob_files` reads a blob of 1 MiB or more as it arrives: a
    /// mirror's forged blob, whose first 1.5 MiB come half a second before
    /// the rest (so they are read before it is whole), reads to its end
    /// (its policy says `allow: true`) and fails its digest, and the answer
    /// is the registry's blob; a small blob, read once downloaded, answers
    /// alike.
    @Test func aForgedBlobReadByBlobFilesAsItArrivedNeverMakesTheAnswer() async throws {
        let upstream = try await TestRegistry()
        let mirror = try HostileRegistry()
        defer {
            upstream.stop()
            mirror.stop()
        }
        let truth = Self.policyLastLayer("allow: false")
        let forged = Self.policyLastLayer("allow: true ")
        let digest = try await upstream.pushBlob("app", Data(truth))
        var small = TarBuilder()
        small.file("etc/policy.yaml", "allow: false")
        let smallDigest = try await upstream.pushBlob("app", Data(small.archive))
        mirror.script {
            $0.path.hasSuffix("/blobs/\(digest)")
                ? .paused(status: 200, headers: [], body: forged, after: 3 << 19, seconds: 0.5) : nil
        }
        let session = try RPCSession(["--mirror", "\(upstream.host)=\(mirror.host)"])
        for blob in [digest, smallDigest] {
            let files = try await session.result(
                "ec.oci.blob_files", [.string("\(upstream.host)/app@\(blob)"), ["etc/policy.yaml"]])
            #expect(files == ["etc/policy.yaml": ["allow": false]])
        }
        #expect(mirror.requests.contains { $0.path.hasSuffix("/blobs/\(digest)") }, "the mirror was asked")
        await session.close()
    }

    /// The first download of a layer breaks off half way and is resumed:
    /// the registry sends the rest, and the layer read as it arrives is
    /// the verified one.
    @Test func aDownloadResumedPartWayIsReadAcrossItsTwoAnswers() async throws {
        let registry = try await TestRegistry()
        let proxy = try RegistryProxy(upstream: registry.host)
        defer {
            registry.stop()
            proxy.stop()
        }
        let layers = Self.threeLayers()
        let image = try await registry.pushImage("retried", "v1", layers: layers)
        let middle = Digest.of(layers[1].bytes)
        let cut = Locked(false)
        proxy.inject { request in
            guard request.path.hasSuffix("/blobs/\(middle)") else { return nil }
            return cut.withLock { done in
                defer { done = true }
                return done ? nil : .truncate
            }
        }
        let session = try RPCSession(["--retries", "1"])
        let files = try await session.result(
            "ec.oci.image_files", [.string("\(proxy.host)/retried@\(image.digest)"), ["etc/policy"]])
        #expect(
            files == [
                "etc/policy/layer0.yaml": ["layer": 0], "etc/policy/layer1.yaml": ["layer": 1],
                "etc/policy/layer2.yaml": ["layer": 2],
            ])
        let asked = proxy.seen.filter { $0.path.hasSuffix("/blobs/\(middle)") }
        #expect(asked.map { $0.headers["range"] } == [nil, "bytes=\(layers[1].bytes.count / 2)-"])
        #expect(proxy.answered.filter { $0.path.hasSuffix("/blobs/\(middle)") }.map(\.status) == [200, 206])
        await session.close()
    }

    /// A gzip layer of 2 MiB of noise that does not compress (the same
    /// bytes every time), then `etc/policy.yaml` holding `policy`.
    static func policyLastLayer(_ policy: String) -> [UInt8] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let noise = (0..<(2 << 20)).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        var tar = TarBuilder()
        tar.file("var/noise", noise)
        tar.file("etc/policy.yaml", policy)
        return Compressors.gzip(tar.archive)
    }

    /// A layer breaks off half way, and the registry answers the range
    /// asked with the whole layer: what was read of the first attempt is
    /// dropped, and the layer is read from the whole answer.
    @Test func aLayerAnsweredWholeAfterItBrokeOffIsReadFromThatAnswer() async throws {
        let registry = try HostileRegistry()
        defer { registry.stop() }
        let layer = Self.policyLastLayer("allow: false")
        let image = registry.image("app", layers: [layer])
        let path = "/blobs/\(Digest.of(layer))"
        let served = Locked(0)
        registry.script { request in
            guard request.path.hasSuffix(path) else { return nil }
            let count = served.withLock { count -> Int in
                count += 1
                return count
            }
            guard count == 1 else { return nil }
            return .truncated(
                status: 200, headers: [], body: Array(layer.prefix(layer.count / 2)), declaredLength: layer.count)
        }
        let session = try RPCSession(["--retries", "2"])
        let files = try await session.result(
            "ec.oci.image_files", [.string("\(registry.host)/app@\(image)"), ["etc"]])
        #expect(files == ["etc/policy.yaml": ["allow": false]])
        let asked = registry.requests.filter { $0.path.hasSuffix(path) }
        #expect(asked.map { $0.headers["range"] } == [nil, "bytes=\(layer.count / 2)-"])
        await session.close()
    }

    /// A layer breaks off half way, and the rest the registry sends is
    /// forged: the layer read as it arrives is whole and reads to its end
    /// (its policy says `allow: true`), but it fails its digest, and that
    /// failure is the answer.
    @Test func aForgedRestOfALayerReadAsItArrivesNeverMakesTheAnswer() async throws {
        let registry = try HostileRegistry()
        defer { registry.stop() }
        let layer = Self.policyLastLayer("allow: false")
        let forged = Self.policyLastLayer("allow: true ")
        let half = layer.count / 2
        try #require(forged.count == layer.count && forged.prefix(half) == layer.prefix(half))
        let image = registry.image("app", layers: [layer])
        let path = "/blobs/\(Digest.of(layer))"
        registry.script { request in
            guard request.path.hasSuffix(path) else { return nil }
            guard request.headers["range"] == "bytes=\(half)-" else {
                return .truncated(
                    status: 200, headers: [], body: Array(layer.prefix(half)), declaredLength: layer.count)
            }
            return .response(
                status: 206, headers: [("Content-Range", "bytes \(half)-\(forged.count - 1)/\(forged.count)")],
                body: Array(forged[half...]))
        }
        let session = try RPCSession(["--retries", "1"])
        let answer = try await session.call("ec.oci.image_files", [.string("\(registry.host)/app@\(image)"), ["etc"]])
        #expect(answer.errorReason == "digest_mismatch", "\(answer.jsonText)")
        await session.close()
    }
}
