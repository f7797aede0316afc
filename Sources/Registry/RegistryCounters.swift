import Locking

/// Registry HTTP requests by kind, and retries, for `server.stats`.
public final class RegistryCounters: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case ping, token, manifest, blob, tagList = "tag-list", referrers
    }

    private let counts = Locked([String: Int]())

    public init() {}

    func count(_ kind: Kind) {
        counts.withLock { $0[kind.rawValue, default: 0] += 1 }
    }

    func countRetry() {
        counts.withLock { $0["retries", default: 0] += 1 }
    }

    /// Requests by kind (every kind present) and `retries`.
    public var snapshot: [String: Int] {
        counts.withLock { current in
            var all = current
            for kind in Kind.allCases where all[kind.rawValue] == nil { all[kind.rawValue] = 0 }
            if all["retries"] == nil { all["retries"] = 0 }
            return all
        }
    }
}
