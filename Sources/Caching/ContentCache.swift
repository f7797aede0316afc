import Locking
import Tally

/// Hits, misses, bytes and evictions of one kind of cached content.
public struct CacheKindStats: Sendable, Equatable {
    public var hits = 0
    public var misses = 0
    public var entries = 0
    public var bytes = 0
    public var evictions = 0
    public init() {}
}

/// Immutable content (named by digest) under one byte budget, least
/// recently used first out. Every kind of content (manifests, blobs,
/// parsed files...) shares the budget; statistics are kept per kind.
public final class ContentCache: @unchecked Sendable {
    /// A key: the kind of content and its name within that kind.
    public struct Key: Hashable, Sendable {
        public let kind: String
        public let name: String
        public init(_ kind: String, _ name: String) {
            self.kind = kind
            self.name = name
        }
    }

    private final class Node {
        let key: Key
        let value: any Sendable
        let cost: Int
        var newer: Node?
        weak var older: Node?
        init(key: Key, value: any Sendable, cost: Int) {
            self.key = key
            self.value = value
            self.cost = cost
        }
    }

    /// The byte budget.
    public let capacity: Int
    private let lock = Lock()
    private var nodes: [Key: Node] = [:]
    /// Least recently used end (evicted first) and most recent end.
    private var oldest: Node?
    private var newest: Node?
    private var totalCost = 0
    private var stats: [String: CacheKindStats] = [:]

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// The value under `key` when present and of type `T` (counted as a hit
    /// or a miss for its kind).
    public func value<T: Sendable>(_ key: Key, as type: T.Type = T.self) -> T? {
        let found = lock.withLock { () -> T? in
            guard let node = nodes[key], let value = node.value as? T else {
                stats[key.kind, default: CacheKindStats()].misses += 1
                return nil
            }
            stats[key.kind, default: CacheKindStats()].hits += 1
            moveToNewest(node)
            return value
        }
        RequestTally.lookup(hit: found != nil)
        return found
    }

    /// Stores `value` with its cost in bytes, evicting the least recently
    /// used entries to stay within the budget. A value larger than the
    /// whole budget is not stored.
    public func store(_ value: any Sendable, cost: Int, for key: Key) {
        let cost = max(cost, 1)
        lock.withLock {
            if let existing = nodes[key] { remove(existing) }
            guard cost <= capacity else { return }
            while totalCost + cost > capacity, let victim = oldest {
                remove(victim)
                stats[victim.key.kind, default: CacheKindStats()].evictions += 1
            }
            let node = Node(key: key, value: value, cost: cost)
            nodes[key] = node
            append(node)
            totalCost += cost
            stats[key.kind, default: CacheKindStats()].entries += 1
            stats[key.kind, default: CacheKindStats()].bytes += cost
        }
    }

    /// Drops everything (statistics stay).
    public func removeAll() {
        lock.withLock {
            while let node = oldest { remove(node) }
        }
    }

    /// Statistics by kind.
    public var statistics: [String: CacheKindStats] { lock.withLock { stats } }

    /// Bytes held now.
    public var bytes: Int { lock.withLock { totalCost } }

    // MARK: - The recency list (called with the lock held)

    private func append(_ node: Node) {
        node.older = newest
        node.newer = nil
        newest?.newer = node
        newest = node
        if oldest == nil { oldest = node }
    }

    private func unlink(_ node: Node) {
        if let older = node.older { older.newer = node.newer } else { oldest = node.newer }
        if let newer = node.newer { newer.older = node.older } else { newest = node.older }
        node.newer = nil
        node.older = nil
    }

    private func moveToNewest(_ node: Node) {
        guard newest !== node else { return }
        unlink(node)
        append(node)
    }

    private func remove(_ node: Node) {
        unlink(node)
        nodes[node.key] = nil
        totalCost -= node.cost
        stats[node.key.kind, default: CacheKindStats()].entries -= 1
        stats[node.key.kind, default: CacheKindStats()].bytes -= node.cost
    }
}
