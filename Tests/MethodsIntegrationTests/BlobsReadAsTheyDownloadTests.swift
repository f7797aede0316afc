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

    /// The first download of a layer breaks off half way and is retried:
    /// what was read of the first attempt is dropped, and the layer is read
    /// whole from the second.
    @Test func aDownloadRetriedPartWayIsReadFromTheAttemptThatWasVerified() async throws {
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
        #expect(proxy.seen.filter { $0.path.hasSuffix("/blobs/\(middle)") }.count == 2)
        await session.close()
    }
}
