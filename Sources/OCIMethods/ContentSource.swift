import FoundationEssentials
import Glibc
import JSON
import Registry

/// The registry operations the content service needs, and nothing else:
/// the seam between the caches and the network. `RegistryClient` is the
/// real source; the unit tests put an in-memory one here and count calls.
protocol ContentSource: Sendable {
    /// The manifest or index `reference` names, verified against its digest.
    nonisolated(nonsending) func fetchManifest(_ reference: ImageReference) async throws -> FetchedManifest
    /// The manifest `reference` names if it is at hand without a request
    /// (a cache of the source's own), else nil. Never throws, never waits.
    func storedManifest(_ reference: ImageReference) -> FetchedManifest?
    /// What a HEAD says of `reference`: media type, size and digest.
    nonisolated(nonsending) func headManifest(_ reference: ImageReference) async throws -> ManifestHead
    /// The blob `reference` names, downloaded to a file under `directory`
    /// (nil: the process's own) and verified; at most `limit` bytes.
    /// `progress` hears of each file written for it as it is written (a
    /// blob at hand without a download writes none).
    func fetchBlob(_ reference: ImageReference, directory: URL?, limit: Int, progress: DownloadProgress?)
        async throws -> VerifiedBlob
    /// The index listing the manifests that refer to `reference` (a
    /// digest), or nil when there is none.
    func fetchReferrers(_ reference: ImageReference) async throws -> FetchedReferrers?
    /// Throws when `reference` may not be asked for at all (`blocked`, or
    /// a name the registries configuration cannot move), whatever a cache
    /// in front of the source holds.
    func refuseIfUnroutable(_ reference: ImageReference) throws
    /// Where a tag of `reference` is resolved when that is not the name
    /// itself (registries.conf moves or mirrors it), else nil: a cache in
    /// front keeps tags under it, so a tag resolved at one place is not
    /// answered for a name since moved to another.
    func tagOrigin(_ reference: ImageReference) -> String?
    /// Requests made by kind, and `retries`, for `server.stats`.
    var requestCounts: [String: Int] { get }
    /// Where work that mostly waits on this source runs best, if anywhere.
    var taskExecutor: (any TaskExecutor)? { get }
    /// Forgets what the source keeps between calls (tokens, challenges).
    func clearCaches()
    /// What the downloads in flight may hold together, if it is bounded.
    var downloadBudget: DownloadBudget? { get }
}

extension RegistryClient: ContentSource {
    var requestCounts: [String: Int] { counters.snapshot }
    var downloadBudget: DownloadBudget? { downloads }

    /// The registry keeps nothing of its own: every manifest is a request.
    func storedManifest(_ reference: ImageReference) -> FetchedManifest? { nil }
}
