import Foundation
import JSON
import Reasons
import RPCDispatch
import Registry
import Testing
import TestFixtures
@testable import OCIMethods

/// The entry of an index the server answers for a platform, beside the one
/// containerd runs (`Tests/GoReaders`, `platform`: `images.Manifest` under
/// `platforms.Only`, as containerd, and Docker and Kubernetes on it, pull
/// for a node). The original picks the first entry whose platform is the
/// one asked for, by its bytes; containerd normalises names, ranks what a
/// node also runs after its own platform, and takes an entry's variant at
/// its word. Where the two differ the server refuses (`ambiguous_platform`):
/// an answer is never another image than the one containerd runs, and "no
/// manifest for the platform" is never said of an index containerd runs an
/// image of.
@Suite struct PlatformParity {
    /// Entries' `platform`s, `nil` for none.
    static let platforms: [String?] = [
        nil, "null",
        #"{"os":"linux","architecture":"amd64"}"#, #"{"os":"linux","architecture":"amd64","variant":"v1"}"#,
        #"{"os":"linux","architecture":"amd64","variant":"v2"}"#,
        #"{"os":"linux","architecture":"amd64","variant":"v3"}"#, #"{"os":"linux","architecture":"x86_64"}"#,
        #"{"os":"Linux","architecture":"amd64"}"#, #"{"os":"","architecture":"amd64"}"#,
        #"{"os":"linux","architecture":"386"}"#, #"{"os":"linux","architecture":"i386"}"#,
        #"{"os":"linux","architecture":"arm64"}"#, #"{"os":"linux","architecture":"arm64","variant":"v8"}"#,
        #"{"os":"linux","architecture":"aarch64"}"#, #"{"os":"linux","architecture":"arm","variant":"v8"}"#,
        #"{"os":"linux","architecture":"arm","variant":"v7"}"#, #"{"os":"linux","architecture":"arm"}"#,
        #"{"os":"linux","architecture":"arm","variant":"v6"}"#, #"{"os":"linux","architecture":"armhf"}"#,
        #"{"os":"linux","architecture":"arm","variant":"v5"}"#, #"{"os":"windows","architecture":"amd64"}"#,
        #"{"os":"linux","architecture":"s390x"}"#, #"{"os":"linux","architecture":"riscv64"}"#,
    ]
    /// Platforms asked for.
    static let asked = [
        "linux/amd64", "linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/386", "linux/amd64/v2",
        "linux/amd64/v3", "linux/arm/v8", "linux/arm",
    ]

    @Test func theServerAnswersNoOtherEntryThanTheOneContainerdRuns() async throws {
        var generator = SeededGenerator(seed: 53)
        let indexes: [(platform: String, entries: [String?])] = (0..<1000).map { _ in
            let count = Int.random(in: 1...4, using: &generator)
            return (
                Self.asked.randomElement(using: &generator) ?? "linux/amd64",
                (0..<count).map { _ in Self.platforms.randomElement(using: &generator) ?? nil }
            )
        }
        let containerd = try await GoReaders.resolvePlatform(indexes)
        try #require(containerd.count == indexes.count)

        let source = try InMemorySource()
        let service = ContentService(
            source: source, cacheBytes: 64 << 20, tagTTL: 60, defaultPlatform: .linuxAMD64,
            downloads: source.directory)
        // The image at each place of an index, told apart by an annotation.
        let images = (0..<4).map { place in
            source.put(
                "r.test/app",
                [
                    "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociManifest),
                    "config": [
                        "mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                        "digest": .string("sha256:" + String(repeating: "c", count: 64)),
                    ],
                    "layers": [], "annotations": ["place": .string(String(place))],
                ])
        }
        var answered = 0
        var refused = 0
        var none = 0
        var wrong: [String] = []
        for (number, index) in indexes.enumerated() {
            let entries = index.entries.enumerated().map { place, platform in
                let named = platform.map { #","platform":\#($0)"# } ?? ""
                return
                    #"{"mediaType":"\#(ManifestMediaType.ociManifest)","size":\#(images[place].bytes.count),"digest":"\#(images[place].digest)"\#(named)}"#
            }
            let text =
                #"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.ociIndex)","manifests":[\#(entries.joined(separator: ","))]}"#
            let top = source.put("r.test/app", try JSONParser.parse(text), mediaType: ManifestMediaType.ociIndex)
            let ref = try ImageReference.parse("r.test/app@\(top.digest)")
            let runs = containerd[number].chosen
            let case_ = "\(index.platform) of \(index.entries.map { $0 ?? "none" }): containerd runs \(runs)"
            do {
                let answer = try await service.imageManifestResult(ref, platform: try Platform(index.platform))
                let place = answer["annotations"]?["place"]?.stringValue.flatMap { Int($0) }
                answered += 1
                // An image containerd does not run at all is no other one.
                if runs != -1, place != runs { wrong.append("\(case_), the server answered \(place ?? -1)") }
            } catch let error as RPCError where error.reason == .ambiguousPlatform {
                refused += 1
            } catch let error as RPCError where error.reason == .noMatchingPlatform {
                none += 1
                if runs != -1 { wrong.append("\(case_), the server found none") }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(indexes.count): \(wrong.prefix(10).joined(separator: "\n"))")
        // Every kind of outcome came up (about 160, 440 and 400 of 1,000).
        #expect(answered > 120 && refused > 250 && none > 250, "answered \(answered), refused \(refused), none \(none)")
    }
}
