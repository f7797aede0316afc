import DiskCaching
import Foundation
import JSON
import Registry

/// A content source with the disk cache in front: manifests by digest come
/// from disk when the repository asked for was seen to hold them, tags
/// when another process (or this one) resolved them within the tag TTL.
/// Whatever the disk lacks comes from `upstream` and is kept. Blobs and
/// referrers go straight through.
struct DiskCachedSource: ContentSource {
    let upstream: any ContentSource
    let disk: DiskCache
    /// How long a tag answer on disk is trusted (`--tag-ttl`).
    let tagTTL: Double

    func fetchManifest(_ reference: ImageReference) async throws -> FetchedManifest {
        try upstream.refuseIfBlocked(reference)
        if let digest = knownDigest(reference), let kept = disk.manifest(digest, repository: reference.name) {
            return kept
        }
        let fetched = try await upstream.fetchManifest(reference)
        disk.storeManifest(fetched, repository: reference.name)
        if reference.digest == nil { disk.storeTag(fetched.digest, for: reference.description) }
        return fetched
    }

    func storedManifest(_ reference: ImageReference) -> FetchedManifest? {
        guard (try? upstream.refuseIfBlocked(reference)) != nil, let digest = knownDigest(reference) else { return nil }
        return disk.manifest(digest, repository: reference.name)
    }

    func headManifest(_ reference: ImageReference) async throws -> ManifestHead {
        try upstream.refuseIfBlocked(reference)
        if let digest = knownDigest(reference), let kept = disk.manifest(digest, repository: reference.name) {
            return ManifestHead(mediaType: kept.mediaType, size: kept.bytes.count, digest: kept.digest)
        }
        let head = try await upstream.headManifest(reference)
        if reference.digest == nil { disk.storeTag(head.digest, for: reference.description) }
        return head
    }

    func fetchBlob(_ reference: ImageReference, directory: URL?, limit: Int) async throws -> VerifiedBlob {
        try await upstream.fetchBlob(reference, directory: directory, limit: limit)
    }

    func fetchReferrers(_ reference: ImageReference) async throws -> [JSONValue] {
        try await upstream.fetchReferrers(reference)
    }

    func refuseIfBlocked(_ reference: ImageReference) throws { try upstream.refuseIfBlocked(reference) }
    var requestCounts: [String: Int] { upstream.requestCounts }
    var taskExecutor: (any TaskExecutor)? { upstream.taskExecutor }
    func clearCaches() { upstream.clearCaches() }

    /// The digest `reference` names, or the disk's fresh answer for its tag.
    private func knownDigest(_ reference: ImageReference) -> Digest? {
        reference.digest ?? disk.tag(reference.description, maxAge: tagTTL)
    }
}
