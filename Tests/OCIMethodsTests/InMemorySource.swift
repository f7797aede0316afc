import Foundation
import JSON
import Locking
import Reasons
import Registry
@testable import OCIMethods

/// A registry in memory under the content service: manifests by tag and
/// digest, blobs by digest, every call logged, failures queued per call,
/// and a gate to hold calls open while a test looks.
final class InMemorySource: ContentSource, @unchecked Sendable {
    private struct State {
        var manifests: [String: FetchedManifest] = [:]
        var blobs: [String: [UInt8]] = [:]
        var calls: [String] = []
        var failures: [String: [any Error]] = [:]
        var running = 0
        var peak = 0
        var held = false
    }
    private let state = Locked(State())
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-source-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    // MARK: What the registry holds

    /// Stores a manifest under its digest and, if given, `tag`.
    @discardableResult
    func put(
        _ repository: String, tag: String? = nil, _ document: JSONValue,
        mediaType: String = ManifestMediaType.ociManifest
    ) -> FetchedManifest {
        let manifest = FetchedManifest(bytes: Array(document.jsonText.utf8), mediaType: mediaType)
        state.withLock {
            $0.manifests["\(repository)@\(manifest.digest)"] = manifest
            if let tag { $0.manifests["\(repository):\(tag)"] = manifest }
        }
        return manifest
    }

    /// An image manifest whose config is `config` (a digest text).
    @discardableResult
    func putImage(
        _ repository: String, tag: String? = nil, config: String = "sha256:" + String(repeating: "c", count: 64)
    )
        -> FetchedManifest
    {
        put(
            repository, tag: tag,
            [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociManifest),
                "config": [
                    "mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": .string(config),
                ],
                "layers": [],
            ])
    }

    func putBlob(_ bytes: [UInt8]) -> Digest {
        let digest = Digest.of(bytes)
        state.withLock { $0.blobs[digest.description] = bytes }
        return digest
    }

    /// The next call named `call` (as `calls` logs it) throws `error`.
    func failNext(_ call: String, with error: any Error) {
        state.withLock { $0.failures[call, default: []].append(error) }
    }

    /// Calls wait while held (cancellable).
    func hold() { state.withLock { $0.held = true } }
    func release() { state.withLock { $0.held = false } }

    // MARK: What the service asked

    /// Every call in order, as `GET repo:tag`, `HEAD repo@digest`, `BLOB ...`, `REFERRERS ...`.
    var calls: [String] { state.withLock { $0.calls } }
    /// The most calls under way at once.
    var peakConcurrency: Int { state.withLock { $0.peak } }
    /// Calls under way now.
    var running: Int { state.withLock { $0.running } }

    // MARK: ContentSource

    func fetchManifest(_ reference: ImageReference) async throws -> FetchedManifest {
        let key = reference.repositoryKey
        try await enter("GET \(key)")
        defer { leave() }
        guard let manifest = state.withLock({ $0.manifests[key] }) else { throw Self.notFound(.manifestUnknown) }
        return manifest
    }

    func headManifest(_ reference: ImageReference) async throws -> ManifestHead {
        let key = reference.repositoryKey
        try await enter("HEAD \(key)")
        defer { leave() }
        guard let manifest = state.withLock({ $0.manifests[key] }) else { throw Self.notFound(.manifestUnknown) }
        return ManifestHead(mediaType: manifest.mediaType, size: manifest.bytes.count, digest: manifest.digest)
    }

    func fetchBlob(_ reference: ImageReference, directory: URL?, limit: Int, progress: DownloadProgress?)
        async throws -> VerifiedBlob
    {
        let digest = reference.digest?.description ?? ""
        try await enter("BLOB \(digest)")
        defer { leave() }
        guard let bytes = state.withLock({ $0.blobs[digest] }) else { throw Self.notFound(.blobUnknown) }
        let file = self.directory.appendingPathComponent(UUID().uuidString)
        try Data(bytes).write(to: file)
        return VerifiedBlob(file: file, size: bytes.count, digest: Digest.of(bytes))
    }

    func fetchReferrers(_ reference: ImageReference) async throws -> FetchedReferrers? {
        try await enter("REFERRERS \(reference.repositoryKey)")
        defer { leave() }
        return nil
    }

    var requestCounts: [String: Int] {
        let calls = self.calls
        return [
            "manifest": calls.filter { $0.hasPrefix("GET ") || $0.hasPrefix("HEAD ") }.count,
            "blob": calls.filter { $0.hasPrefix("BLOB ") }.count, "retries": 0,
        ]
    }

    func refuseIfUnroutable(_ reference: ImageReference) throws {}

    /// Every name is resolved where it names.
    func tagOrigin(_ reference: ImageReference) -> String? { nil }

    /// Nothing is at hand without a call: every manifest is a call.
    func storedManifest(_ reference: ImageReference) -> FetchedManifest? { nil }

    var taskExecutor: (any TaskExecutor)? { nil }

    var downloadBudget: DownloadBudget? { nil }

    func clearCaches() {}

    // MARK: Helpers

    private func enter(_ call: String) async throws {
        let failure = state.withLock { state -> (any Error)? in
            state.calls.append(call)
            state.running += 1
            state.peak = max(state.peak, state.running)
            return state.failures[call]?.isEmpty == false ? state.failures[call]!.removeFirst() : nil
        }
        do {
            while state.withLock({ $0.held }) { try await Task.sleep(for: .milliseconds(2)) }
            // A little time inside, so concurrent calls overlap.
            try await Task.sleep(for: .milliseconds(1))
        } catch {
            leave()
            throw error
        }
        if let failure {
            leave()
            throw failure
        }
    }

    private func leave() { state.withLock { $0.running -= 1 } }

    static func notFound(_ reason: ErrorReason) -> RegistryError {
        RegistryError(.notFound, reason: reason, message: "not here")
    }
}

extension ImageReference {
    /// `repo@digest` for a digest reference, else `repo:tag`.
    var repositoryKey: String {
        if let digest { return "\(name)@\(digest)" }
        return "\(name):\(tag ?? "latest")"
    }
}
