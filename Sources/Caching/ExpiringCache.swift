import FoundationEssentials
import Glibc
import Locking
import Tally

/// Values trusted for a fixed time (tag -> digest answers), bounded in
/// count: when full, expired entries go first, then everything.
public final class ExpiringCache<Value: Sendable>: @unchecked Sendable {
    private struct Entry {
        let value: Value
        let expires: Double
    }

    /// How long a value is trusted, in seconds.
    public let timeToLive: Double
    public let maxEntries: Int
    private let clock: @Sendable () -> Double
    private let lock = Lock()
    private var entries: [String: Entry] = [:]
    private var counts = (hits: 0, misses: 0)

    public init(
        timeToLive: Double, maxEntries: Int = 100_000,
        clock: @escaping @Sendable () -> Double = { ProcessInfo.processInfo.systemUptime }
    ) {
        self.timeToLive = timeToLive
        self.maxEntries = max(1, maxEntries)
        self.clock = clock
    }

    /// The value under `key` if it has not expired.
    public func value(_ key: String) -> Value? {
        let now = clock()
        let found = lock.withLock { () -> Value? in
            guard let entry = entries[key], entry.expires > now else {
                counts.misses += 1
                return nil
            }
            counts.hits += 1
            return entry.value
        }
        RequestTally.lookup(hit: found != nil)
        return found
    }

    public func store(_ value: Value, for key: String) {
        guard timeToLive > 0 else { return }
        let now = clock()
        lock.withLock {
            if entries.count >= maxEntries && entries[key] == nil {
                // Expired entries go first; if that frees nothing, start over
                // (so a full cache costs one sweep per maxEntries stores).
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= maxEntries { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = Entry(value: value, expires: now + timeToLive)
        }
    }

    public func removeAll() { lock.withLock { entries.removeAll() } }

    /// Makes room for `count` more entries at once (up to `maxEntries`), so
    /// the table does not grow step by step while they are stored.
    public func reserveCapacity(forMore count: Int) {
        let count = min(max(0, count), maxEntries)
        lock.withLock { entries.reserveCapacity(min(maxEntries, entries.count + count)) }
    }

    /// Hits, misses and live entries.
    public var statistics: (hits: Int, misses: Int, entries: Int) {
        lock.withLock { (counts.hits, counts.misses, entries.count) }
    }
}
