import Locking

/// Registry HTTP requests by kind, retries and connections opened, for
/// `server.stats`.
public final class RegistryCounters: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case ping, token, manifest, blob, tagList = "tag-list", referrers
    }

    /// Requests by kind (in `Kind.allCases` order), then retries, then connections.
    private let counts = Locked([Int](repeating: 0, count: Kind.allCases.count + 2))
    private static let retries = Kind.allCases.count
    private static let connections = Kind.allCases.count + 1

    public init() {}

    func count(_ kind: Kind) {
        let slot = Self.slot(kind)
        counts.withLock { $0[slot] += 1 }
    }

    func countRetry() {
        counts.withLock { $0[Self.retries] += 1 }
    }

    func countConnections(_ opened: Int) {
        guard opened > 0 else { return }
        counts.withLock { $0[Self.connections] += opened }
    }

    /// Requests by kind (every kind present), `retries` and `connections`.
    /// Read with the lock held. A copy taken under the lock and read after
    /// it is sound (the copy keeps the storage it shares), but only the
    /// runtime's reference count orders that read before a request's next
    /// write in place, and the thread sanitizer cannot see that count: it
    /// reported the two as a race.
    public var snapshot: [String: Int] {
        counts.withLock { current in
            var all: [String: Int] = ["retries": current[Self.retries], "connections": current[Self.connections]]
            for kind in Kind.allCases { all[kind.rawValue] = current[Self.slot(kind)] }
            return all
        }
    }

    private static func slot(_ kind: Kind) -> Int {
        switch kind {
        case .ping: 0
        case .token: 1
        case .manifest: 2
        case .blob: 3
        case .tagList: 4
        case .referrers: 5
        }
    }
}
