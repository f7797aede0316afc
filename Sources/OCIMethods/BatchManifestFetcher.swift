import JSON
import RPCDispatch
import Registry

/// `ec.oci.image_manifests`: distinct refs, cached ones answered at once,
/// the rest fetched by at most `maxConcurrency` workers; each ref's outcome
/// is reported once, as soon as it is known.
struct BatchManifestFetcher: Sendable {
    let service: ContentService
    let maxConcurrency: Int

    /// One ref's outcome.
    typealias Outcome = Result<JSONValue, RPCError>

    /// Fetches every distinct ref of `refs`, calling `report` once per ref
    /// (on the calling task, one at a time). Stops early when cancelled.
    func run(_ refs: [String], platform: Platform, report: (String, Outcome) -> Void) async {
        var seen: Set<String> = []
        var pending: [(String, ImageReference)] = []
        for text in refs where seen.insert(text).inserted {
            let ref: ImageReference
            do {
                ref = try ImageReference.parse(text)
            } catch {
                report(text, .failure(ErrorMapping.invalidReference(error)))
                continue
            }
            if let cached = service.cachedImageManifestResult(ref, platform: platform) {
                report(text, .success(cached))
            } else {
                pending.append((text, ref))
            }
        }
        guard !pending.isEmpty else { return }
        await withTaskGroup(of: (String, Outcome).self) { group in
            var next = 0
            func startNext() {
                guard next < pending.count, !Task.isCancelled else { return }
                let (text, ref) = pending[next]
                next += 1
                group.addTask { [service] in
                    do {
                        return (text, .success(try await service.imageManifestResult(ref, platform: platform)))
                    } catch {
                        return (text, .failure(ErrorMapping.rpcError(error, ref: text)))
                    }
                }
            }
            for _ in 0..<min(max(1, maxConcurrency), pending.count) { startNext() }
            while let (text, outcome) = await group.next() {
                if Task.isCancelled {
                    group.cancelAll()
                    continue
                }
                report(text, outcome)
                startNext()
            }
        }
    }
}
