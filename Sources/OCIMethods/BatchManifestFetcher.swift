import Caching
import JSON
import Locking
import RPCDispatch
import Registry
import Synchronization

/// `ec.oci.image_manifests`: distinct refs, cached ones answered at once,
/// the rest fetched by at most `maxConcurrency` workers; each ref's outcome
/// is reported once, as soon as it is known.
struct BatchManifestFetcher: Sendable {
    let service: ContentService
    let maxConcurrency: Int
    let references: ReferenceCache

    /// One ref's outcome.
    typealias Outcome = Result<JSONValue, RPCError>

    /// Fetches every distinct ref of `refs`, calling `report` once per ref
    /// with its place among the distinct refs (from the workers,
    /// concurrently: it must be thread-safe), each time after
    /// `waitForRoom` when there is one (a slow client holds the workers
    /// back). Stops early when cancelled, or once `report` returns false
    /// (no later ref is fetched or reported). Returns the distinct refs in
    /// the order first given.
    @discardableResult
    func run(
        _ refs: [String], platform: Platform, waitForRoom: (@Sendable () async -> Void)? = nil,
        report: @escaping @Sendable (Int, String, Outcome) -> Bool
    ) async -> [String] {
        var seen = Set<String>(minimumCapacity: refs.count)
        var distinct: [String] = []
        distinct.reserveCapacity(refs.count)
        var parsed: [(Int, String, ImageReference)] = []
        parsed.reserveCapacity(refs.count)
        references.reserveCapacity(forMore: refs.count)
        for text in refs where seen.insert(text).inserted {
            distinct.append(text)
            do {
                parsed.append((distinct.count - 1, text, try references.parse(text)))
            } catch {
                if let waitForRoom { await waitForRoom() }
                guard report(distinct.count - 1, text, .failure(error)) else { return distinct }
            }
        }
        var pending: [(Int, String, ImageReference, ContentService.CachedImageManifest)] = []
        for ((place, text, ref), lookup) in zip(parsed, await lookUp(parsed.map(\.2), platform: platform)) {
            if case .answer(let answer) = lookup {
                if let waitForRoom { await waitForRoom() }
                guard report(place, text, .success(answer)) else { return distinct }
            } else {
                pending.append((place, text, ref, lookup))
            }
        }
        guard !pending.isEmpty else { return distinct }
        service.reserveCapacity(forFetching: pending.count)
        let queue = pending
        // Each worker takes the next pending ref until none is left, so no
        // ref waits for another's report. The workers run on the HTTP
        // engine's thread: between two requests they only parse and shape a
        // manifest, and skipping the thread switch per request took about
        // 40 ms off 1000 manifests behind 20 ms of latency (bench/README.md).
        let cursor = Locked(0)
        let stopped = StopFlag()
        let workers = min(max(1, maxConcurrency), queue.count)
        await PreferredExecutor.with(service.source.taskExecutor) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<workers {
                    group.addTask { [service] in
                        while !Task.isCancelled {
                            let index = cursor.withLock { next in
                                defer { next += 1 }
                                return next
                            }
                            guard !stopped.isSet else { return }
                            guard index < queue.count else { return }
                            let (place, text, ref, lookup) = queue[index]
                            let outcome: Outcome
                            do {
                                outcome = .success(
                                    try await service.imageManifestResult(ref, platform: platform, after: lookup))
                            } catch {
                                outcome = .failure(ErrorMapping.rpcError(error, ref: text))
                            }
                            if let waitForRoom { await waitForRoom() }
                            // Once cancelled or stopped, what finishes is no
                            // longer reported.
                            guard !Task.isCancelled, !stopped.isSet else { return }
                            if !report(place, text, outcome) { stopped.set() }
                        }
                    }
                }
            }
        }
        return distinct
    }

    /// Refs looked up at once before the lookups are split across cores.
    static let lookupChunk = 128

    /// What the caches (memory, then the disk) hold for each of `refs`, in
    /// order. A large batch is split across the cores: answering from disk
    /// costs file reads and a hash per manifest.
    nonisolated(nonsending) private func lookUp(
        _ refs: [ImageReference], platform: Platform
    ) async -> [ContentService.CachedImageManifest] {
        let chunk = Self.lookupChunk
        guard refs.count > chunk else { return refs.map { service.cachedImageManifest($0, platform: platform) } }
        let parts = (refs.count + chunk - 1) / chunk
        return await withTaskGroup(of: (Int, [ContentService.CachedImageManifest]).self) { group in
            for part in 0..<parts {
                group.addTask { [service] in
                    let slice = refs[(part * chunk)..<min(refs.count, (part + 1) * chunk)]
                    return (part, slice.map { service.cachedImageManifest($0, platform: platform) })
                }
            }
            var results = [[ContentService.CachedImageManifest]](repeating: [], count: parts)
            for await (part, lookups) in group { results[part] = lookups }
            return results.flatMap { $0 }
        }
    }
}

/// Set once by the worker whose report says stop; read by every worker
/// before each ref.
private final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
