import Foundation
import JSON
import Testing
import TestFixtures

/// `image_files` downloads the layer below the one it reads while it reads
/// it, one download at a time: what that changes must not show in the
/// answers, the requests, or what is left on disk.
@Suite struct LayersDownloadedAheadTests {
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
}
