import JSON
import RPCDispatch
import Registry

/// `ec.oci.image_manifests`: distinct refs, cached ones answered at once,
/// the rest fetched by at most `maxConcurrency` workers; each ref's outcome
/// is reported once, as soon as it is known.
struct BatchManifestFetcher: Sendable {
    let service: ContentService
    let maxConcurrency: Int
    let references: ReferenceCache

    /// One ref's outcome.
    typealias Outcome = Result<JSONValue, RPCError>

    /// What a worker hands back. A struct, not a tuple: with a task group of
    /// `(String, Outcome)` tuples the release build crashed (miscompiled).
    struct Finished: Sendable {
        let ref: String
        let outcome: Outcome
    }

    /// Fetches every distinct ref of `refs`, calling `report` once per ref
    /// (on the calling task, one at a time). Stops early when cancelled.
    func run(_ refs: [String], platform: Platform, report: @escaping @Sendable (String, Outcome) -> Void) async {
        var seen: Set<String> = []
        var pending: [(String, ImageReference)] = []
        for text in refs where seen.insert(text).inserted {
            let ref: ImageReference
            do {
                ref = try references.parse(text)
            } catch {
                report(text, .failure(error))
                continue
            }
            if let cached = service.cachedImageManifestResult(ref, platform: platform) {
                report(text, .success(cached))
            } else {
                pending.append((text, ref))
            }
        }
        guard !pending.isEmpty else { return }
        let workers = min(max(1, maxConcurrency), pending.count)
        await withTaskGroup(of: Finished.self) { group in
            var next = 0
            var running = 0
            while true {
                while running < workers && next < pending.count && !Task.isCancelled {
                    let (text, ref) = pending[next]
                    next += 1
                    running += 1
                    group.addTask { [service] in
                        do {
                            return Finished(ref: text, outcome: .success(try await service.fetchImageManifestResult(ref, platform: platform)))
                        } catch {
                            return Finished(ref: text, outcome: .failure(ErrorMapping.rpcError(error, ref: text)))
                        }
                    }
                }
                guard running > 0, let finished = await group.next() else { return }
                running -= 1
                // Once cancelled, what finishes is no longer reported.
                if !Task.isCancelled { report(finished.ref, finished.outcome) }
            }
        }
    }
}
