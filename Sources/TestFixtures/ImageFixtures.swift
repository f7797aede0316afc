import Foundation
import JSON
import Registry

/// Images pushed to a test registry: layers, configs, manifests, indexes.
extension TestRegistry {
    /// A pushed manifest or index.
    public struct Pushed: Sendable {
        public let digest: String
        public let bytes: Data
        public var size: Int { bytes.count }
    }

    /// Pushes an image: `config` JSON and `layers` (stored as given, with
    /// their media types); returns the manifest.
    @discardableResult
    public func pushImage(
        _ repository: String, _ reference: String, config: String = "{}",
        layers: [(bytes: [UInt8], mediaType: String)] = [], docker: Bool = false, extra: String = ""
    ) async throws -> Pushed {
        let configDigest = try await pushBlob(repository, Data(config.utf8))
        var layerJSON: [String] = []
        for layer in layers {
            let digest = try await pushBlob(repository, Data(layer.bytes))
            layerJSON.append(#"{"mediaType":"\#(layer.mediaType)","size":\#(layer.bytes.count),"digest":"\#(digest)"}"#)
        }
        let manifestType = docker ? ManifestMediaType.dockerManifest : ManifestMediaType.ociManifest
        let configType =
            docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json"
        let manifest =
            #"{"schemaVersion":2,"mediaType":"\#(manifestType)","config":{"mediaType":"\#(configType)","size":\#(config.utf8.count),"digest":"\#(configDigest)"},"layers":[\#(layerJSON.joined(separator: ","))]\#(extra)}"#
        let data = Data(manifest.utf8)
        let digest = try await pushManifest(repository, reference, data, mediaType: manifestType)
        return Pushed(digest: digest, bytes: data)
    }

    /// Pushes an index of `entries` (digest, size, platform JSON), each
    /// an image manifest unless `entriesAreIndexes`; an entry whose place
    /// in `embedding` holds bytes embeds them (`data`).
    @discardableResult
    public func pushIndex(
        _ repository: String, _ reference: String, entries: [(Pushed, platform: String)], docker: Bool = false,
        entriesAreIndexes: Bool = false, embedding: [Data?] = []
    ) async throws -> Pushed {
        let indexType = docker ? ManifestMediaType.dockerManifestList : ManifestMediaType.ociIndex
        let childType =
            entriesAreIndexes ? indexType : docker ? ManifestMediaType.dockerManifest : ManifestMediaType.ociManifest
        // An empty platform leaves the entry without one.
        let list = entries.enumerated().map { place, entry in
            let platform = entry.platform.isEmpty ? "" : #","platform":\#(entry.platform)"#
            let data =
                place < embedding.count ? embedding[place].map { #","data":"\#($0.base64EncodedString())""# } : nil
            return
                #"{"mediaType":"\#(childType)","size":\#(entry.0.size),"digest":"\#(entry.0.digest)"\#(platform)\#(data ?? "")}"#
        }
        let data = Data(
            #"{"schemaVersion":2,"mediaType":"\#(indexType)","manifests":[\#(list.joined(separator: ","))]}"#.utf8)
        let digest = try await pushManifest(repository, reference, data, mediaType: indexType)
        return Pushed(digest: digest, bytes: data)
    }
}
