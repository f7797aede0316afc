import Caching
import Testing

@Suite struct ContentCacheTests {
    @Test func leastRecentlyUsedIsEvictedFirstWithinTheBudget() {
        let cache = ContentCache(capacity: 300)
        cache.store("a", cost: 100, for: .init("blob", "a"))
        cache.store("b", cost: 100, for: .init("blob", "b"))
        cache.store("c", cost: 100, for: .init("manifest", "c"))
        #expect(cache.value(.init("blob", "a"), as: String.self) == "a")  // a is now the most recent
        cache.store("d", cost: 100, for: .init("blob", "d"))
        #expect(cache.value(.init("blob", "b"), as: String.self) == nil)
        #expect(cache.value(.init("blob", "a"), as: String.self) == "a")
        #expect(cache.value(.init("manifest", "c"), as: String.self) == "c")
        #expect(cache.bytes == 300)
        let stats = cache.statistics
        #expect(stats["blob"]?.evictions == 1)
        #expect(stats["blob"]?.hits == 2)
        #expect(stats["blob"]?.misses == 1)
        #expect(stats["blob"]?.entries == 2)
        #expect(stats["manifest"]?.bytes == 100)
    }

    @Test func aValueLargerThanTheBudgetIsNotStored() {
        let cache = ContentCache(capacity: 100)
        cache.store("small", cost: 50, for: .init("k", "small"))
        cache.store("huge", cost: 101, for: .init("k", "huge"))
        #expect(cache.value(.init("k", "huge"), as: String.self) == nil)
        #expect(cache.value(.init("k", "small"), as: String.self) == "small")
    }

    @Test func keysOfDifferentKindsDoNotCollide() {
        let cache = ContentCache(capacity: 1000)
        cache.store(1, cost: 1, for: .init("blob", "x"))
        cache.store(2, cost: 1, for: .init("manifest", "x"))
        #expect(cache.value(.init("blob", "x"), as: Int.self) == 1)
        #expect(cache.value(.init("manifest", "x"), as: Int.self) == 2)
    }

    @Test func removeAllEmptiesTheCache() {
        let cache = ContentCache(capacity: 1000)
        for i in 0..<10 { cache.store(i, cost: 10, for: .init("k", "\(i)")) }
        cache.removeAll()
        #expect(cache.bytes == 0)
        #expect(cache.value(.init("k", "3"), as: Int.self) == nil)
    }

    @Test func roomMadeForABatchIsBoundedAndKeepsWhatIsStored() {
        let cache = ContentCache(capacity: 1000)
        for i in 0..<10 { cache.store(i, cost: 10, for: .init("k", "\(i)")) }
        for count in [Int.max, -1, 0, 3] { cache.reserveCapacity(forMore: count) }
        let kept = (0..<10).map { cache.value(.init("k", "\($0)"), as: Int.self) }
        #expect(kept == Array(0..<10))
        #expect(cache.bytes == 100)
    }

    final class Payload: Sendable {}

    /// The recency list links its nodes both ways: a value must still be
    /// freed when it is evicted, removed, or the cache itself goes.
    @Test func valuesAreFreedWhenEvictedClearedOrWhenTheCacheGoes() {
        weak var evicted: Payload?
        weak var cleared: Payload?
        weak var heldToTheEnd: Payload?
        var cache: ContentCache? = ContentCache(capacity: 200)
        do {
            let first = Payload(), second = Payload(), third = Payload()
            evicted = first
            cache?.store(first, cost: 100, for: .init("k", "first"))
            cache?.store(second, cost: 100, for: .init("k", "second"))
            cache?.store(third, cost: 100, for: .init("k", "third"))
            cleared = second
        }
        #expect(evicted == nil)
        cache?.removeAll()
        #expect(cleared == nil)
        do {
            let last = Payload(), other = Payload()
            heldToTheEnd = last
            cache?.store(last, cost: 100, for: .init("k", "last"))
            cache?.store(other, cost: 100, for: .init("k", "other"))
            #expect(cache?.value(.init("k", "last"), as: Payload.self) === last)
        }
        #expect(heldToTheEnd != nil)
        cache = nil
        #expect(heldToTheEnd == nil)
    }

    @Test func keysAreEqualOnlyWhenKindAndNameAre() {
        let key = ContentCache.Key("manifest", "r/a@sha256:1")
        #expect(key == ContentCache.Key("manifest", "r/a@sha256:1"))
        #expect(key.hashValue == ContentCache.Key("manifest", "r/a@sha256:1").hashValue)
        #expect(key != ContentCache.Key("manifest", "r/a@sha256:2"))
        #expect(key != ContentCache.Key("blob", "r/a@sha256:1"))
        #expect(ContentCache.Key("ab", "c") != ContentCache.Key("a", "bc"))
    }

    @Test func replacingAKeyKeepsTheAccountsRight() {
        let cache = ContentCache(capacity: 1000)
        cache.store(1, cost: 100, for: .init("k", "x"))
        cache.store(2, cost: 300, for: .init("k", "x"))
        #expect(cache.bytes == 300)
        #expect(cache.statistics["k"]?.entries == 1)
    }
}

@Suite struct ExpiringCacheTests {
    final class FakeClock: @unchecked Sendable {
        var now = 0.0
    }

    @Test func valuesExpireAfterTheirTimeToLive() {
        let clock = FakeClock()
        let cache = ExpiringCache<String>(timeToLive: 60, clock: { clock.now })
        cache.store("sha256:1", for: "repo:tag")
        clock.now = 59
        #expect(cache.value("repo:tag") == "sha256:1")
        clock.now = 61
        #expect(cache.value("repo:tag") == nil)
    }

    @Test func roomMadeForABatchIsBoundedAndKeepsWhatIsStored() {
        let cache = ExpiringCache<Int>(timeToLive: 60, maxEntries: 8)
        for i in 0..<5 { cache.store(i, for: "\(i)") }
        for count in [Int.max, -1, 0, 3] { cache.reserveCapacity(forMore: count) }
        let kept = (0..<5).map { cache.value("\($0)") }
        #expect(kept == Array(0..<5))
    }

    @Test func aZeroTimeToLiveCachesNothing() {
        let cache = ExpiringCache<String>(timeToLive: 0)
        cache.store("v", for: "k")
        #expect(cache.value("k") == nil)
    }

    @Test func theEntryCountIsBounded() {
        let clock = FakeClock()
        let cache = ExpiringCache<Int>(timeToLive: 60, maxEntries: 3, clock: { clock.now })
        for i in 0..<10 {
            clock.now = Double(i)
            cache.store(i, for: "\(i)")
        }
        #expect(cache.statistics.entries <= 3)
        #expect(cache.value("9") == 9)
        #expect(cache.value("0") == nil)
    }

    @Test func expiredEntriesMakeRoomBeforeLiveOnesAreDropped() {
        let clock = FakeClock()
        let cache = ExpiringCache<Int>(timeToLive: 60, maxEntries: 3, clock: { clock.now })
        cache.store(0, for: "old")
        clock.now = 50
        cache.store(1, for: "a")
        cache.store(2, for: "b")
        clock.now = 70  // "old" has expired; the cache is full
        cache.store(3, for: "c")
        #expect(cache.value("a") == 1)
        #expect(cache.value("b") == 2)
        #expect(cache.value("c") == 3)
    }
}
