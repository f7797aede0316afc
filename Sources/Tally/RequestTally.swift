import Synchronization

/// What one request did, counted while it runs: cache lookups that hit and
/// missed (memory and disk) and the registry requests it made. The
/// dispatcher makes one per call (when requests are logged) and binds it to
/// `RequestTally.current` for the call's task and its child tasks; the
/// caches and the registry client count into whatever tally is current.
/// A request that joins another's fetch counts none of that fetch's work.
public final class RequestTally: Sendable {
    /// The tally of the request the current task serves, if any.
    @TaskLocal public static var current: RequestTally?

    private let hitCount = Atomic<Int>(0)
    private let missCount = Atomic<Int>(0)
    private let registryRequestCount = Atomic<Int>(0)

    public init() {}

    /// Cache lookups answered.
    public var hits: Int { hitCount.load(ordering: .relaxed) }
    /// Cache lookups not answered.
    public var misses: Int { missCount.load(ordering: .relaxed) }
    /// HTTP requests to registries (retries, tokens and pings included).
    public var registryRequests: Int { registryRequestCount.load(ordering: .relaxed) }

    /// Counts a cache lookup into the current request's tally.
    public static func lookup(hit: Bool) {
        guard let tally = current else { return }
        if hit {
            tally.hitCount.add(1, ordering: .relaxed)
        } else {
            tally.missCount.add(1, ordering: .relaxed)
        }
    }

    /// Counts a registry request into the current request's tally.
    public static func registryRequest() {
        current?.registryRequestCount.add(1, ordering: .relaxed)
    }
}
