import JSON
import RPCDispatch
import Reasons
import Registry

/// What a fetched manifest is read as: an image manifest or an index.
///
/// Told by its `Content-Type`, else by the `mediaType` it declares, else
/// by having `manifests` and no `layers`. A document that is also the
/// other kind is refused, as containerd refuses it since CVE-2021-41190:
/// one that holds the other kind's fields, or declares the other kind's
/// media type. Readers that go by different signs (the `Content-Type`, a
/// registry may serve the same bytes with either; the declared type; the
/// fields) would otherwise read different images from the same digest,
/// and a policy could pass one while the runtime pulls the other. The
/// original reads such a document by its `Content-Type`, so the refusal is
/// `ambiguous_manifest`, which must never read as absence. Docker schema 1
/// is refused as well (`unexpected_media_type`): the original refuses it
/// too, and read as an image it listed no layers while runtimes that
/// still pull it unpack its `fsLayers`.
enum ManifestKind: Equatable {
    case image, index

    static let indexTypes = [ManifestMediaType.ociIndex, ManifestMediaType.dockerManifestList]
    static let imageTypes = [ManifestMediaType.ociManifest, ManifestMediaType.dockerManifest]

    /// The kind `fetched` is read as; `ambiguous_manifest` when it is both
    /// kinds, `unexpected_media_type` when it is Docker schema 1.
    static func of<Document: JSONDocumentNode>(
        _ fetched: FetchedManifest, _ document: Document, ref: ImageReference
    ) throws(RPCError) -> ManifestKind {
        let signs = Signs(document)
        let type = fetched.mediaType
        let kind: ManifestKind
        if indexTypes.contains(type) {
            kind = .index
        } else if imageTypes.contains(type) {
            kind = .image
        } else if ManifestMediaType.dockerSchema1.contains(type.lowercased()) {
            throw schema1(ref)
        } else if let declared = signs.declaredType, !declared.isEmpty {
            kind = indexTypes.contains(declared) ? .index : .image
        } else {
            kind = signs.hasManifests && !signs.hasLayers ? .index : .image
        }
        if signs.isSchema1 { throw schema1(ref) }
        switch kind {
        case .image:
            if signs.hasManifests || signs.declaredType.map(indexTypes.contains) == true {
                throw refusal("\(ref) is served as an image manifest but is also an index (\(signs.otherKind(.image)))")
            }
        case .index:
            if signs.hasLayers || signs.hasConfig || signs.declaredType.map(imageTypes.contains) == true {
                throw refusal("\(ref) is served as an index but is also an image manifest (\(signs.otherKind(.index)))")
            }
        }
        return kind
    }

    /// Refuses a manifest the index entry naming it (of media type
    /// `entryType`) gives as the other kind (`ambiguous_manifest`): the
    /// original reads an index's child as its entry's media type says (an
    /// index read as an image manifest has no layers, an image manifest
    /// read as an index no entries), and containerd refuses it
    /// (`validateMediaType`), while the bytes and the registry's
    /// `Content-Type` make it this kind. An entry of another media type
    /// (an artifact's, or none) says nothing of its kind.
    func requireAgreement(withEntryType entryType: String, of digest: Digest, ref: ImageReference) throws(RPCError) {
        let named: ManifestKind
        if Self.indexTypes.contains(entryType) {
            named = .index
        } else if Self.imageTypes.contains(entryType) {
            named = .image
        } else {
            return
        }
        guard named != self else { return }
        throw Self.refusal(
            "\(ref) is an index whose entry gives \(digest) as \(named == .index ? "an index" : "an image manifest") (\(entryType)), but it is \(self == .index ? "an index" : "an image manifest")"
        )
    }

    private static func schema1(_ ref: ImageReference) -> RPCError {
        RPCError(
            .unsupportedContent, reason: .unexpectedMediaType,
            message:
                "\(ref) names a Docker schema 1 manifest, which is not supported (its layers would be read as none)")
    }

    /// A document of both kinds: the original reads it as its
    /// `Content-Type` says, runtimes refuse it, and older ones read it as
    /// either.
    private static func refusal(_ message: String) -> RPCError {
        RPCError(
            .unsupportedContent, reason: .ambiguousManifest,
            message: message + ": readers would take it for different images")
    }

    /// What a document's top-level members say of its kind, read in one pass.
    private struct Signs {
        var hasManifests = false
        var hasLayers = false
        var hasConfig = false
        var hasFSLayers = false
        var declaredType: String?
        var schemaVersionIsOne = false

        init<Document: JSONDocumentNode>(_ document: Document) {
            _ = document.forEachMember { key, value in
                if key.is("manifests") {
                    hasManifests = true
                } else if key.is("layers") {
                    hasLayers = true
                } else if key.is("config") {
                    hasConfig = true
                } else if key.is("fsLayers") {
                    hasFSLayers = true
                } else if key.is("mediaType") {
                    declaredType = value.stringText
                } else if key.is("schemaVersion") {
                    schemaVersionIsOne =
                        value.withNumberUTF8 { $0.count == 1 && $0[0] == UInt8(ascii: "1") } == true
                }
            }
        }

        /// Schema 1, told as containers/image and containerd tell it when
        /// the `Content-Type` does not: a `schemaVersion` of 1, or `fsLayers`.
        var isSchema1: Bool { schemaVersionIsOne || hasFSLayers }

        /// What makes a document read as `kind` the other kind too.
        func otherKind(_ kind: ManifestKind) -> String {
            var found: [String] = []
            switch kind {
            case .image:
                if hasManifests { found.append("it has manifests") }
                if let declaredType, ManifestKind.indexTypes.contains(declaredType) {
                    found.append("it declares \(declaredType)")
                }
            case .index:
                if hasLayers { found.append("it has layers") }
                if hasConfig { found.append("it has a config") }
                if let declaredType, ManifestKind.imageTypes.contains(declaredType) {
                    found.append("it declares \(declaredType)")
                }
            }
            return found.joined(separator: ", ")
        }
    }
}
