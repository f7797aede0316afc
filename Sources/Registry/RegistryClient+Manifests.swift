import Reasons
import FoundationEssentials
import Glibc
import Memory

/// A manifest or index as fetched: its exact bytes, media type and digest.
public struct FetchedManifest: Sendable {
    public let bytes: [UInt8]
    public let mediaType: String
    /// Computed from the bytes (and checked against what the registry said).
    public let digest: Digest
    /// What the bytes hold of the memory budget of the calls in flight,
    /// taken as they arrived: held while a copy that carries it is kept
    /// (by the calls waiting to shape an answer from it), given back with
    /// the last. A cache keeps an `uncharged` copy: it has a bound of its
    /// own. Nil for a manifest of at most `MemoryBudget.uncountedValueBytes`.
    package let charge: MemoryShare?

    /// `bytes` of `mediaType`, named by their digest.
    package init(bytes: [UInt8], mediaType: String) {
        self.init(bytes: bytes, mediaType: mediaType, digest: Digest.of(bytes))
    }

    package init(bytes: [UInt8], mediaType: String, digest: Digest, charge: MemoryShare? = nil) {
        self.bytes = bytes
        self.mediaType = mediaType
        self.digest = digest
        self.charge = charge
    }

    /// The same manifest, holding nothing of the memory budget (the copy a
    /// cache keeps).
    package var uncharged: FetchedManifest {
        charge == nil ? self : FetchedManifest(bytes: bytes, mediaType: mediaType, digest: digest)
    }

    /// The same manifest, its bytes taken from `budget` (a copy read from
    /// somewhere nothing counted it, such as the disk cache); itself when
    /// there is no budget, it already holds its charge, or it is too small
    /// to be counted (`MemoryBudget.uncountedValueBytes`), as a fetched
    /// body would be.
    package func charged(to budget: MemoryBudget?) throws(MemoryLimitExceeded) -> FetchedManifest {
        guard let budget, charge == nil, bytes.count > MemoryBudget.uncountedValueBytes else { return self }
        let charge = MemoryShare(of: budget)
        try charge.take(bytes.count)
        return FetchedManifest(bytes: bytes, mediaType: mediaType, digest: digest, charge: charge)
    }
}

/// The media types of manifests and indexes.
public enum ManifestMediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    /// Docker's schema 1 manifests, unsigned and signed: never asked for,
    /// and refused when a registry sends one.
    public static let dockerSchema1 = [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]
    /// What we accept, in order of preference.
    public static let all = [ociManifest, ociIndex, dockerManifest, dockerManifestList]
    /// `all` as one `Accept` header value, joined once.
    static let acceptAll = all.joined(separator: ", ")
}

extension RegistryClient {
    /// Manifests larger than this are refused (as distribution does).
    public static let maxManifestBytes = 4 << 20

    /// Fetches the manifest (or index) `reference` names with one GET, by
    /// tag or digest. The digest is computed from the bytes; it must match
    /// the reference's digest and the registry's `Docker-Content-Digest`.
    nonisolated(nonsending) public func fetchManifest(_ reference: ImageReference) async throws(RegistryError)
        -> FetchedManifest
    {
        try await viaMirrors(reference) { (endpoint) async throws(RegistryError) -> FetchedManifest in
            try await fetchManifest(at: endpoint)
        }
    }

    nonisolated(nonsending) private func fetchManifest(at reference: ImageReference) async throws(RegistryError)
        -> FetchedManifest
    {
        let url = try url(reference, String(joining: "manifests/", reference.identifier))
        let response = try await send(
            "GET", url, for: reference, accept: ManifestMediaType.acceptAll, kind: .manifest,
            bodyLimit: Self.maxManifestBytes)
        guard response.status == 200 else {
            throw Self.error(for: response, notFoundReason: .manifestUnknown, what: "manifest \(reference)")
        }
        guard response.body.count <= Self.maxManifestBytes else {
            throw RegistryError(
                .limitExceeded, reason: .manifestTooLarge,
                message: "manifest \(reference) is larger than the limit of \(Self.maxManifestBytes) bytes")
        }
        let bytes = response.body
        let algorithm = reference.digest?.algorithm ?? .sha256
        let digest = Digest.of(bytes, algorithm: algorithm)
        if let expected = reference.digest, expected != digest {
            throw RegistryError(
                .integrity, reason: .digestMismatch,
                message: "manifest \(reference) has digest \(digest)")
        }
        if let header = response.header("Docker-Content-Digest"), let claimed = Digest(header),
            claimed.algorithm == algorithm, claimed != digest
        {
            throw RegistryError(
                .integrity, reason: .digestMismatch,
                message: "registry says \(claimed) but manifest \(reference) hashes to \(digest)")
        }
        return FetchedManifest(bytes: bytes, mediaType: response.mediaType, digest: digest, charge: response.bodyCharge)
    }
}

/// What a manifest HEAD tells: the descriptor of what a reference names.
public struct ManifestHead: Sendable, Equatable {
    public let mediaType: String
    public let size: Int
    public let digest: Digest

    package init(mediaType: String, size: Int, digest: Digest) {
        self.mediaType = mediaType
        self.size = size
        self.digest = digest
    }
}

extension RegistryClient {
    /// Asks the registry, with a HEAD, for the descriptor of what
    /// `reference` names (image or index). `Content-Type`, `Content-Length`
    /// and `Docker-Content-Digest` must all be present.
    nonisolated(nonsending) public func headManifest(_ reference: ImageReference) async throws(RegistryError)
        -> ManifestHead
    {
        try await viaMirrors(reference) { (endpoint) async throws(RegistryError) -> ManifestHead in
            try await headManifest(at: endpoint)
        }
    }

    nonisolated(nonsending) private func headManifest(at reference: ImageReference) async throws(RegistryError)
        -> ManifestHead
    {
        let url = try url(reference, String(joining: "manifests/", reference.identifier))
        let response = try await send("HEAD", url, for: reference, accept: ManifestMediaType.acceptAll, kind: .manifest)
        guard response.status == 200 else {
            throw Self.error(for: response, notFoundReason: .manifestUnknown, what: "manifest \(reference)")
        }
        let mediaType = response.mediaType
        // A length with a sign, or two lengths that differ, fail Go's
        // client; so do they here, where `-5` was answered as the size.
        guard !mediaType.isEmpty,
            let size = response.header("Content-Length").flatMap(ResponseHeaders.length),
            let digest = response.header("Docker-Content-Digest").flatMap(Digest.init)
        else {
            throw RegistryError(
                .unavailable, reason: .serverError,
                message:
                    "the registry's HEAD answer for \(reference) lacks Content-Type, Docker-Content-Digest or a Content-Length that is one number",
                httpStatus: response.status)
        }
        if let expected = reference.digest, expected != digest {
            throw RegistryError(
                .integrity, reason: .digestMismatch, message: "registry says \(digest) for \(reference)")
        }
        return ManifestHead(mediaType: mediaType, size: size, digest: digest)
    }

    /// Whether `reference` (a tag) exists: true on 200, false on 404;
    /// other answers are errors.
    public func manifestExists(_ reference: ImageReference) async throws(RegistryError) -> Bool {
        do {
            _ = try await headManifest(reference)
            return true
        } catch  where error.kind == .notFound {
            return false
        }
    }
}
