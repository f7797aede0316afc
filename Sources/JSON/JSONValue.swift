/// A JSON value as it appears on the wire.
///
/// Numbers keep their exact source text (`12345678901234567890` and `1.10`
/// survive a round trip unchanged) and objects keep their key order, so a
/// value parsed from a registry blob is written back byte-for-byte the same
/// modulo whitespace.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, stored as its RFC 8259 text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
    /// A value kept as its compact text (answers built straight as text,
    /// held in caches and copied into messages as they are). It reads and
    /// compares as the value its text is.
    case encoded(EncodedJSON)

    /// An integer number value.
    public static func integer<T: BinaryInteger>(_ value: T) -> JSONValue {
        .number(String(value))
    }
}

extension JSONValue {
    /// The string payload, or nil for any other kind of value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        if case .encoded(let text) = self { return text.value.stringValue }
        return nil
    }

    /// The array payload, or nil for any other kind of value.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        if case .encoded(let text) = self { return text.value.arrayValue }
        return nil
    }

    /// The object payload, or nil for any other kind of value.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        if case .encoded(let text) = self { return text.value.objectValue }
        return nil
    }

    /// The number's text, or nil for any other kind of value.
    public var numberText: String? {
        if case .number(let n) = self { return n }
        if case .encoded(let text) = self { return text.value.numberText }
        return nil
    }

    /// The bool payload, or nil for any other kind of value.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        if case .encoded(let text) = self { return text.value.boolValue }
        return nil
    }

    /// The number as an `Int` when its text is an integer that fits.
    public var intValue: Int? {
        numberText.flatMap { Int($0) }
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        if case .encoded(let text) = self { return text.value.isNull }
        return false
    }

    /// The member `key` of an object value; nil when absent or not an object.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        case .encoded(let text): return text.value.kindName
        }
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        case (.encoded(let a), .encoded(let b)): return a.bytes == b.bytes || a.value == b.value
        case (.encoded(let a), _): return a.value == rhs
        case (_, .encoded(let b)): return lhs == b.value
        default: return false
        }
    }
}

/// A JSON value's compact text, as this package's writer writes it.
public struct EncodedJSON: Sendable {
    /// The UTF-8 text.
    public let bytes: [UInt8]

    /// The text `write` writes; it must write exactly one JSON value.
    package init(writing write: (inout OutputBytes) -> Void) {
        var out = OutputBytes(capacity: 512)
        write(&out)
        bytes = out.array()
        // Debug builds (the tests) check every text made: what is written
        // on stdout must always be JSON.
        assert(Self.isJSON(bytes), "not JSON: \(String(decoding: bytes, as: UTF8.self))")
    }

    /// Whether `bytes` is one JSON value, read on a tape (flat, whatever
    /// its nesting) for the debug builds' check.
    private static func isJSON(_ bytes: [UInt8]) -> Bool {
        (try? JSONTape.parse(bytes, maxDepth: JSONParser.goMaxDepth)) != nil
    }

    /// The text `write` writes, or nil when it would be over `limit` bytes
    /// (the buffer never grows past it; writing on costs little, as every
    /// later byte is dropped).
    package init?(writing write: (inout OutputBytes) -> Void, limit: Int) {
        var out = OutputBytes(capacity: min(512, limit), limit: limit)
        write(&out)
        guard !out.overflowed else { return nil }
        bytes = out.array()
        assert(Self.isJSON(bytes), "not JSON: \(String(decoding: bytes, as: UTF8.self))")
    }

    /// The value the text is (parsed on every call: for reading an answer
    /// back, not for serving one).
    public var value: JSONValue {
        (try? JSONParser.parse(bytes)) ?? .null
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { JSONObject.Member(key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}
