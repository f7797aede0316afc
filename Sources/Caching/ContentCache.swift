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
    /// A key: the kind of content and its name within that kind. Its hash
    /// is computed once, so a lookup, an insert and the table's growth do
    /// not hash the (digest-long) name again.
    public struct Key: Hashable, Sendable {
        public let kind: String
        public let name: String
        private let hash: Int

        public init(_ kind: String, _ name: String) {
            self.kind = kind
            self.name = name
            var hasher = Hasher()
            hasher.combine(kind)
            hasher.combine(name)
            hash = hasher.finalize()
        }

        public static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.hash == rhs.hash && lhs.kind == rhs.kind && lhs.name == rhs.name
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    private final class Node {
        let key: Key
        let value: any Sendable
        let cost: Int
        // Both links are strong: `unlink` clears them whenever a node
        // leaves the list (and the cache empties its list when it goes).
        var newer: Node?
        var older: Node?
        init(key: Key, value: any Sendable, cost: Int) {
            self.key = key
            self.value = value
            self.cost = cost
        }
    }

    /// The byte budget.
    public let capacity: Int
    /// Everything the lock guards, in one value: reached through the lock's
    /// `inout`, its fields need no run-time exclusivity check each (a
    /// class's stored properties do).
    private let state = Locked(State())

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    deinit {
        // The links are strong both ways: break them node by node.
        state.withLock { $0.removeAll() }
    }

    /// The value under `key` when present and of type `T` (counted as a hit
    /// or a miss for its kind).
    public func value<T: Sendable>(_ key: Key, as type: T.Type = T.self) -> T? {
        let found = state.withLock { state -> T? in
            guard let node = state.nodes[key], let value = node.value as? T else {
                state.count(key.kind) { $0.misses += 1 }
                return nil
            }
            state.count(key.kind) { $0.hits += 1 }
            state.moveToNewest(node)
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
        let capacity = capacity
        state.withLock { state in
            if let existing = state.nodes[key] { state.remove(existing) }
            guard cost <= capacity else { return }
            while state.totalCost + cost > capacity, let victim = state.oldest {
                state.remove(victim)
                state.count(victim.key.kind) { $0.evictions += 1 }
            }
            let node = Node(key: key, value: value, cost: cost)
            state.nodes[key] = node
            state.append(node)
            state.totalCost += cost
            state.count(key.kind) {
                $0.entries += 1
                $0.bytes += cost
            }
        }
    }

    /// Entries room is made for at most by `reserveCapacity(forMore:)`.
    public static let maxReservedEntries = 1 << 16

    /// Makes room for `count` more entries at once (up to
    /// `maxReservedEntries`), so the table does not grow step by step while
    /// they are stored.
    public func reserveCapacity(forMore count: Int) {
        let count = min(max(0, count), Self.maxReservedEntries)
        state.withLock { $0.nodes.reserveCapacity(min(Self.maxReservedEntries, $0.nodes.count + count)) }
    }

    /// Drops everything (statistics stay).
    public func removeAll() {
        state.withLock { $0.removeAll() }
    }

    /// Statistics by kind.
    public var statistics: [String: CacheKindStats] {
        state.withLock { state in Dictionary(state.stats.map { ($0.kind, $0.stats) }) { _, last in last } }
    }

    /// Bytes held now.
    public var bytes: Int { state.withLock { $0.totalCost } }

    /// The entries by key, the recency list through them, and the counts.
    private struct State {
        var nodes: [Key: Node] = [:]
        /// Least recently used end (evicted first) and most recent end.
        var oldest: Node?
        var newest: Node?
        var totalCost = 0
        /// Statistics by kind: a few kinds, found by a short scan (cheaper
        /// than hashing the kind's name at every lookup and store).
        var stats: [(kind: String, stats: CacheKindStats)] = []

        mutating func append(_ node: Node) {
            node.older = newest
            node.newer = nil
            newest?.newer = node
            newest = node
            if oldest == nil { oldest = node }
        }

        mutating func unlink(_ node: Node) {
            if let older = node.older { older.newer = node.newer } else { oldest = node.newer }
            if let newer = node.newer { newer.older = node.older } else { newest = node.older }
            node.newer = nil
            node.older = nil
        }

        mutating func moveToNewest(_ node: Node) {
            guard newest !== node else { return }
            unlink(node)
            append(node)
        }

        mutating func remove(_ node: Node) {
            unlink(node)
            nodes[node.key] = nil
            totalCost -= node.cost
            count(node.key.kind) {
                $0.entries -= 1
                $0.bytes -= node.cost
            }
        }

        mutating func removeAll() {
            while let node = oldest { remove(node) }
        }

        /// Updates the statistics of `kind` (one lookup).
        mutating func count(_ kind: String, _ update: (inout CacheKindStats) -> Void) {
            if let index = stats.firstIndex(where: { $0.kind == kind }) {
                update(&stats[index].stats)
            } else {
                var fresh = CacheKindStats()
                update(&fresh)
                stats.append((kind, fresh))
            }
        }
    }
}
