import Locking

/// Registry HTTP requests by kind, retries and connections opened, for
/// `server.stats`.
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

    func countConnections(_ opened: Int) {
        guard opened > 0 else { return }
        counts.withLock { $0["connections", default: 0] += opened }
    }

    /// Requests by kind (every kind present), `retries` and `connections`.
    public var snapshot: [String: Int] {
        counts.withLock { current in
            var all = current
            for kind in Kind.allCases where all[kind.rawValue] == nil { all[kind.rawValue] = 0 }
            for total in ["retries", "connections"] where all[total] == nil { all[total] = 0 }
            return all
        }
    }
}
