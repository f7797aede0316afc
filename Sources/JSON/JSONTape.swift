/// A JSON text checked exactly as `JSONParser` checks it (the same
/// reader), kept as its bytes and a tape of where each value lies: no
/// string, array or object is made. An answer shaped from a manifest
/// copies the manifest's own bytes (`Shapes`), where a tree of values
/// cost an allocation per string and container (bench/README.md).
package struct JSONTape: Sendable {
    /// What a value is.
    @usableFromInline
    enum Kind: UInt8, Sendable {
        case null, `true`, `false`, number, array, object
        /// A string without escapes: its bytes are its content.
        case string
        /// A string with escapes: decoded as it was read, its text is
        /// `decoded[start..<end]`.
        case escapedString
    }

    /// One value or key, in the order of the text.
    @usableFromInline
    struct Entry: Sendable {
        var kind: Kind
        /// A number's or a string's bytes (a string's between its quotes);
        /// for a string with escapes, its decoded text's in `decoded`.
        var start: UInt32
        var end: UInt32
        /// The entry after this value and all it holds.
        var next: UInt32
    }

    /// The text.
    package let bytes: [UInt8]
    /// The values: an object is followed by its keys and values in turn,
    /// an array by its elements, each container's `next` past its last.
    @usableFromInline
    let entries: [Entry]
    /// The text of the strings with escapes, decoded once, as the reader
    /// read them (a key looked up many times is not decoded again at every
    /// look), one after another.
    @usableFromInline
    let decoded: [UInt8]

    /// A text longer than this gets room for its most entries at once (it
    /// never grows, so never holds twice what it needs while it grows): at
    /// most `maxHeldBytes` in all. Shorter ones grow as they need.
    package static let reservedTextBytes = 64 << 10

    /// What the tape holds besides the text: its entries and the decoded
    /// strings (room reserved but never written is not memory).
    package var heldBytes: Int {
        entries.count * MemoryLayout<Entry>.stride + decoded.count
    }

    /// The most a tape of `textBytes` holds besides the text: 16 bytes an
    /// entry, and at most every other byte of a text begins one (a one-byte
    /// value and its separator, as in `[0,0,0]`). A string with escapes
    /// takes at least five bytes of text, and decodes to fewer than its
    /// text: its entry and its decoded bytes stay within the eight a byte.
    /// So does one read as Go reads it (`JSONTextReading.asGo`): `n` bytes
    /// that are not UTF-8 take `n + 2` bytes of text and decode to `3n`.
    package static func maxHeldBytes(forText textBytes: Int) -> Int {
        let (perByte, overflow) = textBytes.multipliedReportingOverflow(by: MemoryLayout<Entry>.stride / 2)
        return overflow || perByte > Int.max - 32 ? Int.max : perByte + 32
    }

    /// The tape of one JSON value (surrounded by optional whitespace),
    /// refused as `JSONParser.parse` refuses it, with the same errors;
    /// string content that is not Unicode read as `reading` says.
    package static func parse(
        _ bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth, reading: JSONTextReading = .strict
    ) throws(JSONParseError) -> JSONTape {
        // Offsets are kept in 32 bits (manifests are at most a few MiB).
        guard bytes.count < Int(UInt32.max) else {
            throw JSONParseError(offset: 0, reason: "text over \(UInt32.max) bytes")
        }
        var builder = JSONTapeBuilder()
        builder.entries.reserveCapacity(bytes.count > reservedTextBytes ? bytes.count / 2 + 2 : bytes.count / 16 + 4)
        // Read as Go reads it, a byte that is not UTF-8 decodes to three.
        let decodedPerByte = reading == .asGo ? 3 : 1
        builder.reservedDecodedBytes = bytes.count > reservedTextBytes ? decodedPerByte * bytes.count : 0
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) in
                try JSONReader.read(raw, maxDepth: maxDepth, reading: reading, into: &builder)
            }
        }
        try result.get()
        return JSONTape(bytes: bytes, entries: builder.entries, decoded: builder.decoded)
    }

    /// What `body` makes of the top value. Nodes point into this tape:
    /// they are valid only during the call and must not be kept.
    @inlinable
    package func withRoot<T, E: Error>(_ body: (Node) throws(E) -> T) throws(E) -> T {
        try bytes.withUnsafeBufferPointer { (text) throws(E) -> T in
            try entries.withUnsafeBufferPointer { (entries) throws(E) -> T in
                try decoded.withUnsafeBufferPointer { (decoded) throws(E) -> T in
                    // A tape always holds one value, and text (parse refuses none).
                    try body(Node(text: text.baseAddress!, entries: entries.baseAddress!, decoded: decoded, index: 0))
                }
            }
        }
    }

    /// A value on a tape, read in place (see `withRoot`).
    package struct Node: JSONDocumentNode {
        let text: UnsafePointer<UInt8>
        let entries: UnsafePointer<Entry>
        let decoded: UnsafeBufferPointer<UInt8>
        let index: Int

        @usableFromInline
        init(
            text: UnsafePointer<UInt8>, entries: UnsafePointer<Entry>, decoded: UnsafeBufferPointer<UInt8>, index: Int
        ) {
            self.text = text
            self.entries = entries
            self.decoded = decoded
            self.index = index
        }

        private var entry: Entry { entries[index] }

        private func node(_ index: Int) -> Node { Node(text: text, entries: entries, decoded: decoded, index: index) }

        /// The bytes in the text of a number, or of a string without escapes.
        private func bytes(of entry: Entry) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(start: text + Int(entry.start), count: Int(entry.end &- entry.start))
        }

        /// An escaped string's decoded text.
        private func decodedText(_ entry: Entry) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: decoded[Int(entry.start)..<Int(entry.end)])
        }

        private func key(_ entry: Entry) -> JSONMemberKey {
            entry.kind == .string ? JSONMemberKey(bytes: bytes(of: entry)) : JSONMemberKey(decoded: decodedText(entry))
        }

        package func forEachMember(_ body: (JSONMemberKey, Node) -> Void) -> Bool {
            let object = entry
            guard object.kind == .object else { return false }
            var place = index + 1
            while place < Int(object.next) {
                body(key(entries[place]), node(place + 1))
                place = Int(entries[place + 1].next)
            }
            return true
        }

        package func forEachElement(_ body: (Node) -> Void) -> Bool {
            let array = entry
            guard array.kind == .array else { return false }
            var place = index + 1
            while place < Int(array.next) {
                body(node(place))
                place = Int(entries[place].next)
            }
            return true
        }

        package func member(_ name: StaticString) -> Node? {
            let object = entry
            guard object.kind == .object else { return nil }
            var found: Node?
            var place = index + 1
            while place < Int(object.next) {
                let key = entries[place]
                if key.kind == .string ? JSONMemberKey.same(bytes(of: key), name) : self.key(key).is(name) {
                    found = node(place + 1)
                }
                place = Int(entries[place + 1].next)
            }
            return found
        }

        package var isObject: Bool { entry.kind == .object }
        package var isArray: Bool { entry.kind == .array }
        package var isString: Bool { entry.kind == .string || entry.kind == .escapedString }
        package var isNull: Bool { entry.kind == .null }

        package func withStringUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
            let entry = entry
            switch entry.kind {
            case .string: return body(bytes(of: entry))
            case .escapedString: return body(decodedText(entry))
            default: return nil
            }
        }

        package func withNumberUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
            let entry = entry
            return entry.kind == .number ? body(bytes(of: entry)) : nil
        }

        package var stringText: String? {
            let entry = entry
            switch entry.kind {
            case .string: return String(decoding: bytes(of: entry), as: UTF8.self)
            case .escapedString: return String(decoding: decodedText(entry), as: UTF8.self)
            default: return nil
            }
        }

        package var numberText: String? {
            let entry = entry
            return entry.kind == .number ? String(decoding: bytes(of: entry), as: UTF8.self) : nil
        }

        package func writeString(into out: inout OutputBytes) -> Bool {
            let entry = entry
            switch entry.kind {
            case .string:
                // No byte of it needs an escape: the reader stops at those.
                out.append(UInt8(ascii: "\""))
                out.append(bytes(of: entry))
                out.append(UInt8(ascii: "\""))
            case .escapedString: JSONWriter.writeString(utf8: decodedText(entry), into: &out)
            default: return false
            }
            return true
        }

        package func writeNumber(into out: inout OutputBytes) -> Bool {
            let entry = entry
            guard entry.kind == .number else { return false }
            out.append(bytes(of: entry))
            return true
        }
    }
}

/// Records where each value lies, checking strings' UTF-8 in place.
struct JSONTapeBuilder: JSONBuilder {
    var entries: [JSONTape.Entry] = []
    var decoded: [UInt8] = []
    /// Room for the decoded strings, made at the first (the most they can
    /// hold is the text's length); none for a short text.
    var reservedDecodedBytes = 0

    private mutating func append(_ kind: JSONTape.Kind, _ start: Int = 0, _ end: Int = 0) {
        entries.append(
            JSONTape.Entry(kind: kind, start: UInt32(start), end: UInt32(end), next: UInt32(entries.count + 1)))
    }

    mutating func null() { append(.null) }
    mutating func bool(_ value: Bool) { append(value ? .true : .false) }
    mutating func number(_ text: UnsafeBufferPointer<UInt8>, at start: Int) {
        append(.number, start, start + text.count)
    }

    mutating func string(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> Void? {
        guard token.ascii || (try? UTF8Span(validating: content.span)) != nil else { return nil }
        if token.escaped {
            if decoded.isEmpty && reservedDecodedBytes > 0 { decoded.reserveCapacity(reservedDecodedBytes) }
            let start = decoded.count
            decoded.append(contentsOf: content)
            append(.escapedString, start, decoded.count)
        } else {
            append(.string, token.start, token.end)
        }
        return ()
    }

    mutating func key(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> Void? {
        string(token, content: content)
    }

    mutating func beginObject() -> Int {
        append(.object)
        return entries.count - 1
    }

    func add(_ key: Void, _ value: Void, to object: inout Int) {}

    mutating func endObject(_ object: Int) { entries[object].next = UInt32(entries.count) }

    mutating func beginArray() -> Int {
        append(.array)
        return entries.count - 1
    }

    func add(_ value: Void, to array: inout Int) {}

    mutating func endArray(_ array: Int) { entries[array].next = UInt32(entries.count) }
}
