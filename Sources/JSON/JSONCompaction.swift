import Glibc

extension JSONParser {
    /// The most memory `compacted` holds at once for `bytes`: the text it
    /// writes and its copy out (each at most the text); where the keys of
    /// the open objects begin (4 bytes a key), twice more for an object of
    /// many keys sorted to find a repeat; and an object rewritten when a
    /// key repeats (at most the text). Keys are counted by the colons in
    /// the text (each key has one after it; colons in strings count too):
    /// a text of arrays and numbers holds no more than it did.
    public static func compactionBytes(for bytes: [UInt8]) -> Int {
        var colons = 0
        bytes.withUnsafeBufferPointer { text in
            guard var at = text.baseAddress else { return }
            let end = at + text.count
            while at < end, let colon = memchr(at, Int32(UInt8(ascii: ":")), end - at) {
                colons += 1
                at = UnsafePointer(colon.assumingMemoryBound(to: UInt8.self)) + 1
            }
        }
        // At most 4 GiB of text (`compacted` refuses more): no overflow.
        return 2 * bytes.count + 12 * colons + (colons > 1 ? bytes.count : 0)
    }

    /// The value `bytes` is, checked as `parse` checks it and kept as the
    /// compact text the writer would write for it (`JSONValue.encoded`),
    /// with no tree of values: a value-dense text (`[0,0,...]`) takes
    /// about 24 bytes of tree a value, twelve times its text, where this
    /// takes about its text (bench/README.md, "Blobs and files kept as
    /// text"). Refused as `parse` refuses it, with the same errors.
    ///
    /// A key an object repeats is kept once, where it first came, with its
    /// last value, as Go's readers keep it (`encoding/json` and go-yaml set
    /// a map's entry): written twice, a client could read the other value.
    public static func compacted(
        _ bytes: [UInt8], maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        // The writer notes where keys are as 32-bit offsets.
        guard bytes.count <= Int(UInt32.max) else {
            throw JSONParseError(offset: 0, reason: "a JSON text of more than 4 GiB")
        }
        var failure: JSONParseError?
        let text = EncodedJSON(writing: { out in
            withUnsafeMutablePointer(to: &out) { out in
                var writer = JSONTextBuilder(out: out)
                failure = bytes.withUnsafeBytes { raw in
                    do throws(JSONParseError) {
                        try JSONReader.read(raw, maxDepth: maxDepth, into: &writer)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            // What a refused text left written is not JSON: the text is dropped.
            if failure != nil {
                out = OutputBytes(capacity: 16)
                out.append("null")
            }
        })
        if let failure { throw failure }
        return .encoded(text)
    }
}

/// Writes each value as the reader reads it, compact, as `JSONWriter`
/// writes the tree `JSONParser` would have made.
struct JSONTextBuilder: JSONBuilder {
    /// Where the text goes (valid while the builder is used).
    private let out: UnsafeMutablePointer<OutputBytes>
    /// For each open container: whether it has had a member yet.
    private var hasMembers: [Bool] = []
    /// A key has just been written: its value needs no separator.
    private var afterKey = false
    /// Where each key of the open objects begins in the text (its quote),
    /// the innermost object's last.
    private var keyStarts: [UInt32] = []
    /// For each open object: where its text begins, and where its keys
    /// begin in `keyStarts`.
    private var objects: [(start: Int, firstKey: Int)] = []

    init(out: UnsafeMutablePointer<OutputBytes>) { self.out = out }

    /// The separator a value needs before it: none after a key or at the
    /// top, a comma after an array's earlier element.
    private mutating func beginValue() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = hasMembers.indices.last else { return }
        if hasMembers[last] { out.pointee.append(UInt8(ascii: ",")) }
        hasMembers[last] = true
    }

    mutating func null() {
        beginValue()
        out.pointee.append("null")
    }

    mutating func bool(_ value: Bool) {
        beginValue()
        out.pointee.append(value ? "true" : "false")
    }

    mutating func number(_ text: UnsafeBufferPointer<UInt8>, at start: Int) {
        beginValue()
        out.pointee.append(text)
    }

    mutating func string(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> Void? {
        guard token.ascii || (try? UTF8Span(validating: content.span)) != nil else { return nil }
        beginValue()
        JSONWriter.writeString(utf8: content, into: &out.pointee)
        return ()
    }

    mutating func key(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> Void? {
        guard token.ascii || (try? UTF8Span(validating: content.span)) != nil else { return nil }
        let last = hasMembers.count - 1
        if hasMembers[last] { out.pointee.append(UInt8(ascii: ",")) }
        hasMembers[last] = true
        keyStarts.append(UInt32(truncatingIfNeeded: out.pointee.count))
        JSONWriter.writeString(utf8: content, into: &out.pointee)
        out.pointee.append(UInt8(ascii: ":"))
        afterKey = true
        return ()
    }

    mutating func beginObject() {
        beginValue()
        objects.append((out.pointee.count, keyStarts.count))
        out.pointee.append(UInt8(ascii: "{"))
        hasMembers.append(false)
    }

    func add(_ key: consuming Void, _ value: consuming Void, to object: inout Void) {}

    mutating func endObject(_ object: Void) {
        hasMembers.removeLast()
        let object = objects.removeLast()
        if keyStarts.count - object.firstKey > 1 {
            JSONRepeatedKeys.keepLastValues(in: &out.pointee, keyStarts: keyStarts, from: object.firstKey)
        }
        keyStarts.removeSubrange(object.firstKey...)
        out.pointee.append(UInt8(ascii: "}"))
    }

    mutating func beginArray() {
        beginValue()
        out.pointee.append(UInt8(ascii: "["))
        hasMembers.append(false)
    }

    func add(_ value: consuming Void, to array: inout Void) {}

    mutating func endArray(_ array: Void) {
        hasMembers.removeLast()
        out.pointee.append(UInt8(ascii: "]"))
    }
}

/// Repeated keys in a compact object's text: each key kept once, where it
/// first came, with its last value. The writer writes a key the same way
/// whenever it is the same, so keys are compared by their written bytes.
enum JSONRepeatedKeys {
    /// Rewrites the object whose members are the last ones written, their
    /// keys beginning at `keyStarts[first...]` (its `}` not yet written),
    /// when a key repeats. A few keys are compared pair by pair; more are
    /// sorted by their bytes, so a hostile object of millions of keys
    /// costs `n log n` comparisons and 8 bytes a member.
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
            taking![earlier] = Int32(later)
            taking![later] = -1
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
        var sorted = Array(starts)
        sorted.sort { a, b in
            let compared = order(key(a), key(b))
            return compared != 0 ? compared < 0 : a < b
        }
        var runStart = 0
        for index in 1...sorted.count {
            guard index == sorted.count || order(key(sorted[runStart]), key(sorted[index])) != 0 else { continue }
            if index - runStart > 1 {
                // Places by binary search: the starts grow with the place.
                let firstPlace = place(of: sorted[runStart], in: starts)
                for later in sorted[(runStart + 1)..<index] {
                    repeated(firstPlace, place(of: later, in: starts))
                }
                taking![firstPlace] = Int32(place(of: sorted[index - 1], in: starts))
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
