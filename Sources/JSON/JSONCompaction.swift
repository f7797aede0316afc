extension JSONParser {
    /// The value `bytes` is, checked as `parse` checks it and kept as the
    /// compact text the writer would write for it (`JSONValue.encoded`),
    /// with no tree of values: a value-dense text (`[0,0,...]`) takes
    /// about 24 bytes of tree a value, twelve times its text, where this
    /// takes about its text (bench/README.md, "Blobs and files kept as
    /// text"). Refused as `parse` refuses it, with the same errors.
    public static func compacted(
        _ bytes: [UInt8], maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
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
        JSONWriter.writeString(utf8: content, into: &out.pointee)
        out.pointee.append(UInt8(ascii: ":"))
        afterKey = true
        return ()
    }

    mutating func beginObject() {
        beginValue()
        out.pointee.append(UInt8(ascii: "{"))
        hasMembers.append(false)
    }

    func add(_ key: consuming Void, _ value: consuming Void, to object: inout Void) {}

    mutating func endObject(_ object: Void) {
        hasMembers.removeLast()
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
