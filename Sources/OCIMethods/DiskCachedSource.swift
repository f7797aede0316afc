import DiskCaching
import Dispatch
import FoundationEssentials
import Glibc
import JSON
import Locking
import Memory
import Registry
import Tally

/// A content source with the disk cache in front: manifests by digest come
/// from disk when the repository asked for was seen to hold them, tags
/// when another process (or this one) resolved them within the tag TTL.
/// Blobs come from disk, hashed whole before use, when the repository was
/// seen to hold them. Whatever the disk lacks comes from `upstream` and is
/// kept. Referrers go straight through.
struct DiskCachedSource: ContentSource {
    let upstream: any ContentSource
    let disk: DiskCache
    /// How long a tag answer on disk is trusted (`--tag-ttl`).
    let tagTTL: Double
    /// What a manifest read back from disk is taken from while a call
    /// holds it, as a fetched one is (`FetchedManifest.charge`).
    var memory: MemoryBudget? = nil

    nonisolated(nonsending) func fetchManifest(_ reference: ImageReference) async throws -> FetchedManifest {
        try upstream.refuseIfUnroutable(reference)
        let tag = tagKey(reference)
        if let digest = knownDigest(reference, tag: tag), let kept = disk.manifest(digest, repository: reference.name) {
            return try kept.charged(to: memory)
        }
        // Another process may be fetching it right now: wait for it, then
        // look again, rather than ask the registry twice.
        return try await disk.withFetchLock(reference.description) { waited in
            if waited, let digest = knownDigest(reference, tag: tag),
                let kept = disk.manifest(digest, repository: reference.name)
            {
                return try kept.charged(to: memory)
            }
            let fetched = try await upstream.fetchManifest(reference)
            disk.storeManifest(fetched, repository: reference.name, tag: tag)
            return fetched
        }
    }

    func storedManifest(_ reference: ImageReference) -> FetchedManifest? {
        guard (try? upstream.refuseIfUnroutable(reference)) != nil,
            let digest = knownDigest(reference, tag: tagKey(reference))
        else {
            return nil
        }
        return disk.manifest(digest, repository: reference.name)
    }

    nonisolated(nonsending) func headManifest(_ reference: ImageReference) async throws -> ManifestHead {
        try upstream.refuseIfUnroutable(reference)
        let tag = tagKey(reference)
        if let digest = knownDigest(reference, tag: tag), let kept = disk.manifest(digest, repository: reference.name) {
            return ManifestHead(mediaType: kept.mediaType, size: kept.bytes.count, digest: kept.digest)
        }
        let head = try await upstream.headManifest(reference)
        if let tag { disk.storeTag(head.digest, for: tag, repository: reference.name) }
        return head
    }

    func fetchBlob(_ reference: ImageReference, directory: URL?, limit: Int, progress: DownloadProgress?)
        async throws -> VerifiedBlob
    {
        try upstream.refuseIfUnroutable(reference)
        if let kept = await kept(reference, limit: limit) { return kept }
        guard let digest = reference.digest else {
            return try await fetchBlobAndKeep(reference, directory: directory, limit: limit, progress: progress)
        }
        // A layer is worth waiting for: another process fetching it keeps it.
        return try await disk.withFetchLock("blob " + digest.description) { waited in
            if waited, let kept = await kept(reference, limit: limit) { return kept }
            return try await fetchBlobAndKeep(reference, directory: directory, limit: limit, progress: progress)
        }
    }

    /// The blob on disk for `reference`'s repository, read off the task pool.
    private func kept(_ reference: ImageReference, limit: Int) async -> VerifiedBlob? {
        guard let digest = reference.digest else { return nil }
        return await Self.offThePool({ [disk, tally = RequestTally.current] in
            RequestTally.$current.withValue(tally) { disk.blob(digest, repository: reference.name, limit: limit) }
        })
    }

    private func fetchBlobAndKeep(
        _ reference: ImageReference, directory: URL?, limit: Int, progress: DownloadProgress?
    ) async throws -> VerifiedBlob {
        guard directory == nil else {
            let fetched = try await upstream.fetchBlob(
                reference, directory: directory, limit: limit, progress: progress)
            disk.storeBlob(fetched, repository: reference.name)
            return fetched
        }
        // Downloaded beside the content, so keeping it is a hard link; a
        // cache disk that cannot take it (full, read-only) fails nothing:
        // the download is made again where downloads go without a cache.
        let fetched: VerifiedBlob
        do {
            fetched = try await upstream.fetchBlob(
                reference, directory: disk.downloads, limit: limit, progress: progress)
        } catch let error as RegistryError where error.reason == .ioError {
            disk.downloadFailed()
            return try await upstream.fetchBlob(reference, directory: nil, limit: limit, progress: progress)
        }
        disk.storeBlob(fetched, repository: reference.name)
        return fetched
    }

    /// Runs `work` (reading and hashing a file) on a dispatch queue, off
    /// the task pool.
    private static func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        let handOff = SanitizerHandOff.Point()
        let value = await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                let value = work()
                SanitizerHandOff.release(handOff)
                continuation.resume(returning: value)
            }
        }
        SanitizerHandOff.acquire(handOff)
        return value
    }

    func fetchReferrers(_ reference: ImageReference) async throws -> FetchedReferrers? {
        try await upstream.fetchReferrers(reference)
    }

    func refuseIfUnroutable(_ reference: ImageReference) throws { try upstream.refuseIfUnroutable(reference) }
    func tagOrigin(_ reference: ImageReference) -> String? { upstream.tagOrigin(reference) }
    var requestCounts: [String: Int] { upstream.requestCounts }
    var taskExecutor: (any TaskExecutor)? { upstream.taskExecutor }
    var downloadBudget: DownloadBudget? { upstream.downloadBudget }
    func clearCaches() { upstream.clearCaches() }

    /// The digest `reference` names, or the disk's fresh answer for its
    /// tag, kept under `tag` (`tagKey`).
    private func knownDigest(_ reference: ImageReference, tag: String?) -> Digest? {
        reference.digest ?? tag.flatMap { disk.tag($0, repository: reference.name, maxAge: tagTTL) }
    }

    /// What a tag is kept under: the reference, and where it is resolved
    /// when registries.conf moves or mirrors it. A tag resolved before the
    /// configuration changed is then not answered for the moved name; a
    /// name nothing moves keeps the key it always had.
    /// Nil for a reference by digest.
    private func tagKey(_ reference: ImageReference) -> String? {
        guard reference.digest == nil else { return nil }
        guard let origin = upstream.tagOrigin(reference) else { return reference.description }
        return reference.description + " from " + origin
    }
}
