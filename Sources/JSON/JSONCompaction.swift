import Glibc

extension JSONParser {
    /// The most memory `compacted` holds at once for `bytes`: the text it
    /// writes and its copy out (each at most the text); where the keys of
    /// the open objects begin (4 bytes a key), and for an object of many
    /// keys, each key's place and length sorted (8 bytes) and the member
    /// whose value it takes (4 bytes); and an object rewritten when a
    /// key repeats (at most the text). Keys are counted by the colons in
    /// the text (each key has one after it; colons in strings count too):
    /// a text of arrays and numbers holds no more than it did.
    public static func compactionBytes(for bytes: [UInt8], reading: JSONTextReading = .strict) -> Int {
        var colons = 0
        // Read as Go reads it, a byte that is not UTF-8 (one of 0x80 and
        // up) is written as three: two more in the text and in its copy.
        let growth = reading == .asGo ? 4 * bytes.reduce(0) { $0 + Int($1 >> 7) } : 0
        bytes.withUnsafeBufferPointer { text in
            guard var at = text.baseAddress else { return }
            let end = at + text.count
            while at < end, let colon = memchr(at, Int32(UInt8(ascii: ":")), end - at) {
                colons += 1
                at = UnsafePointer(colon.assumingMemoryBound(to: UInt8.self)) + 1
            }
        }
        // At most 4 GiB of text (`compacted` refuses more): no overflow.
        return 2 * bytes.count + growth + 16 * colons + (colons > 1 ? bytes.count : 0)
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
        _ bytes: [UInt8], maxDepth: Int = defaultMaxDepth, reading: JSONTextReading = .strict
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
                        try JSONReader.read(raw, maxDepth: maxDepth, reading: reading, into: &writer)
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
