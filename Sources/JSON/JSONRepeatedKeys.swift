import Glibc

/// Repeated keys in a compact object's text: each key kept once, where it
/// first came, with its last value. The writer writes a key the same way
/// whenever it is the same, so keys are compared by their written bytes.
enum JSONRepeatedKeys {
    /// Rewrites the object whose members are the last ones written, their
    /// keys beginning at `keyStarts[first...]` (its `}` not yet written),
    /// when a key repeats. A few keys are compared pair by pair; more are
    /// sorted by their bytes, so a hostile object of millions of keys
    /// costs `n log n` comparisons and, with the 4 bytes its place took,
    /// 16 bytes a key (`JSONParser.compactionBytes` counts them).
    static func keepLastValues(in out: inout OutputBytes, keyStarts: [UInt32], from first: Int) {
        keyStarts.withUnsafeBufferPointer { all in
            keepLastValues(in: &out, starts: UnsafeBufferPointer(rebasing: all[first...]))
        }
    }

    /// As above, the keys beginning at `starts` (in order, at least one).
    private static func keepLastValues(in out: inout OutputBytes, starts: UnsafeBufferPointer<UInt32>) {
        let end = out.count
        // For each member, the member whose value it is written with (its
        // own, or its key's last), or -1 when its key came before.
        guard let taking = out.withWritten({ text in Self.taking(starts, in: text) }) else { return }
        let rebuilt = out.withWritten { text -> [UInt8] in
            var rebuilt: [UInt8] = []
            rebuilt.reserveCapacity(end - Int(starts[0]))
            for (index, source) in taking.enumerated() where source >= 0 {
                if !rebuilt.isEmpty { rebuilt.append(UInt8(ascii: ",")) }
                let keyStart = Int(starts[index])
                rebuilt.append(contentsOf: UnsafeBufferPointer(rebasing: text[keyStart..<keyEnd(text, from: keyStart)]))
                rebuilt.append(UInt8(ascii: ":"))
                let source = Int(source)
                let valueStart = keyEnd(text, from: Int(starts[source])) + 1
                let valueEnd = source + 1 < starts.count ? Int(starts[source + 1]) - 1 : end
                rebuilt.append(contentsOf: UnsafeBufferPointer(rebasing: text[valueStart..<valueEnd]))
            }
            return rebuilt
        }
        out.cut(to: Int(starts[0]))
        out.append(rebuilt)
    }

    /// Which value each member is written with; nil when no key repeats.
    private static func taking(_ starts: UnsafeBufferPointer<UInt32>, in text: UnsafeBufferPointer<UInt8>) -> [Int32]? {
        func key(_ start: UInt32) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: text[Int(start)..<keyEnd(text, from: Int(start))])
        }
        var taking: [Int32]?
        func repeated(_ earlier: Int, _ later: Int) {
            if taking == nil { taking = (0..<starts.count).map { Int32($0) } }
            taking?[earlier] = Int32(later)
            taking?[later] = -1
        }
        if starts.count <= 16 {
            // Each key found once, compared by length first.
            return withUnsafeTemporaryAllocation(of: UnsafeBufferPointer<UInt8>.self, capacity: starts.count) { keys in
                for (index, start) in starts.enumerated() { keys.initializeElement(at: index, to: key(start)) }
                for later in starts.indices.dropFirst() {
                    // The key's first place, whose value the later one replaces.
                    for earlier in 0..<later
                    where keys[earlier].count == keys[later].count && (taking?[earlier] ?? 0) >= 0
                        && order(keys[earlier], keys[later]) == 0
                    {
                        repeated(earlier, later)
                        break
                    }
                }
                return taking
            }
        }
        // Sorted by key, then by place: each run of one key is in order.
        // Each key as its place and length in one word, found once.
        var sorted = starts.map { start in UInt64(start) << 32 | UInt64(key(start).count) }
        func key(_ word: UInt64) -> UnsafeBufferPointer<UInt8> {
            let start = Int(word >> 32)
            return UnsafeBufferPointer(rebasing: text[start..<start + Int(word & 0xFFFF_FFFF)])
        }
        sorted.sort { a, b in
            let compared = order(key(a), key(b))
            return compared != 0 ? compared < 0 : a < b
        }
        var runStart = 0
        for index in 1...sorted.count {
            guard index == sorted.count || order(key(sorted[runStart]), key(sorted[index])) != 0 else { continue }
            if index - runStart > 1 {
                // Places by binary search: the starts grow with the place.
                let firstPlace = place(of: UInt32(sorted[runStart] >> 32), in: starts)
                for later in sorted[(runStart + 1)..<index] {
                    repeated(firstPlace, place(of: UInt32(later >> 32), in: starts))
                }
            }
            runStart = index
        }
        return taking
    }

    /// The place of the key that starts at `start` among `starts` (ascending).
    private static func place(of start: UInt32, in starts: UnsafeBufferPointer<UInt32>) -> Int {
        var (low, high) = (0, starts.count)
        while low < high {
            let middle = (low + high) / 2
            if starts[middle] < start { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// How two written keys order by their bytes (memcmp's sign).
    private static func order(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard let x = a.baseAddress, let y = b.baseAddress else { return a.count == b.count ? 0 : a.isEmpty ? -1 : 1 }
        let compared = memcmp(x, y, min(a.count, b.count))
        return compared != 0 ? compared : a.count == b.count ? 0 : a.count < b.count ? -1 : 1
    }

    /// Where the key written at `start` ends: after its closing quote (an
    /// escaped quote is `\"`, and `\\` escapes a backslash).
    private static func keyEnd(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start + 1
        while index < text.count {
            switch text[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return text.count
    }
}
