/// Why a byte sequence is not the JSON text we accept, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the problem in the input.
    public var offset: Int
    /// A short human-readable reason, e.g. "trailing comma in object".
    public var reason: String
    /// Whether the text was refused for nesting deeper than the reader was
    /// asked to read, not for its syntax: the rest of it was not read.
    public var isNestingLimit: Bool

    public init(offset: Int, reason: String, isNestingLimit: Bool = false) {
        self.offset = offset
        self.reason = reason
        self.isNestingLimit = isNestingLimit
    }

    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Rejects trailing commas, invalid escapes, lone surrogates and invalid
/// UTF-8 (read as U+FFFD instead, as Go reads them, with
/// `JSONTextReading.asGo`), control characters in strings, leading zeros,
/// trailing data and nesting deeper than `maxDepth`. Numbers are kept as
/// their exact text.
public enum JSONParser {
    /// Nesting deeper than this is refused: the protocol's messages, files
    /// (a tree of values is freed by recursion), the tape's default.
    public static let defaultMaxDepth = 512
    /// The nesting Go's `encoding/json` reads, for manifests (which the
    /// original reads with it). The reader keeps open containers in a
    /// list, and a tape is flat: no recursion goes this deep. (A blob
    /// stays at 512: its answer is the value itself, and clients read it
    /// by recursion.)
    public static let goMaxDepth = 10_000
    /// The deepest message the server writes: a value as deep as
    /// `defaultMaxDepth` (a blob's, a file's) in the response or
    /// notification around it. What reads the server's own output reads
    /// this deep.
    public static let answerMaxDepth = defaultMaxDepth + 2

    /// Parses exactly one JSON value (surrounded by optional whitespace),
    /// string content that is not Unicode read as `reading` says.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth, reading: JSONTextReading = .strict
    ) throws(JSONParseError) -> JSONValue {
        var tree = JSONTreeBuilder()
        return try JSONReader.read(bytes, maxDepth: maxDepth, reading: reading, into: &tree)
    }

    /// Parses a byte array.
    public static func parse<Bytes: Collection<UInt8>>(
        _ bytes: Bytes, maxDepth: Int = defaultMaxDepth, reading: JSONTextReading = .strict
    ) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable {
            buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth, reading: reading)
            }
        }
        if let result { return try result.get() }
        return try parse(Array(bytes), maxDepth: maxDepth, reading: reading)
    }

    /// Parses the UTF-8 text of a string.
    public static func parse(
        _ text: String, maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}

/// How a reader takes string content that is not Unicode: invalid UTF-8,
/// or an escaped surrogate that is not half of a pair.
public enum JSONTextReading: Sendable {
    /// Refused, as RFC 8259 asks (the protocol's own messages; files,
    /// which go-yaml refuses so too).
    case strict
    /// As Go's `encoding/json` reads it: each byte that is not UTF-8, and
    /// each such escape, is U+FFFD. The original builtins read manifests
    /// and blobs so; refused, such a document was an error where the
    /// original answered, and an error leaves a policy's rule undefined.
    case asGo
}

/// A string as the reader found it.
struct JSONStringToken {
    /// Where the text between the quotes lies in the input.
    let start: Int
    let end: Int
    /// Whether the text held escapes (its content is then decoded apart).
    let escaped: Bool
    /// Whether every byte of its content is ASCII (no UTF-8 to check).
    let ascii: Bool
}

/// What a reader makes of the values it finds, in the order of the text:
/// the parser's tree of values, or a tape of where each value lies.
protocol JSONBuilder {
    associatedtype Value
    associatedtype Key
    associatedtype Object
    associatedtype Array
    mutating func null() -> Value
    mutating func bool(_ value: Bool) -> Value
    /// A number; `text` lies at `start` in the input.
    mutating func number(_ text: UnsafeBufferPointer<UInt8>, at start: Int) -> Value
    /// A string value, `content` being its decoded bytes (valid only
    /// during the call); nil when they are not valid UTF-8.
    mutating func string(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> Value?
    /// An object's key, as `string`.
    mutating func key(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> Key?
    mutating func beginObject() -> Object
    mutating func add(_ key: consuming Key, _ value: consuming Value, to object: inout Object)
    mutating func endObject(_ object: Object) -> Value
    mutating func beginArray() -> Array
    mutating func add(_ value: consuming Value, to array: inout Array)
    mutating func endArray(_ array: Array) -> Value
}

/// Builds the `JSONValue` tree.
struct JSONTreeBuilder: JSONBuilder {
    func null() -> JSONValue { .null }
    func bool(_ value: Bool) -> JSONValue { .bool(value) }
    func number(_ text: UnsafeBufferPointer<UInt8>, at start: Int) -> JSONValue {
        .number(String(decoding: text, as: UTF8.self))
    }
    func string(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        key(token, content: content).map { .string($0) }
    }
    func key(_ token: JSONStringToken, content: UnsafeBufferPointer<UInt8>) -> String? {
        token.ascii ? String(decoding: content, as: UTF8.self) : String(validating: content, as: UTF8.self)
    }
    func beginObject() -> [JSONObject.Member] { [] }
    func add(_ key: consuming String, _ value: consuming JSONValue, to object: inout [JSONObject.Member]) {
        object.append(JSONObject.Member(key: key, value: value))
    }
    func endObject(_ object: [JSONObject.Member]) -> JSONValue { .object(JSONObject(object)) }
    func beginArray() -> [JSONValue] { [] }
    func add(_ value: consuming JSONValue, to array: inout [JSONValue]) { array.append(value) }
    func endArray(_ array: [JSONValue]) -> JSONValue { .array(array) }
}

/// The one reader of JSON text: checks it as `JSONParser` documents and
/// hands what it finds to a builder.
struct JSONReader<Builder: JSONBuilder>: ~Copyable {
    /// Reads exactly one JSON value (surrounded by optional whitespace).
    static func read(
        _ bytes: UnsafeRawBufferPointer, maxDepth: Int, reading: JSONTextReading = .strict,
        into builder: inout Builder
    ) throws(JSONParseError) -> Builder.Value {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(offset: 0, reason: "empty input")
        }
        var reader = JSONReader(
            base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maxDepth: maxDepth,
            reading: reading, builder: builder)
        defer { builder = reader.builder }
        reader.skipWhitespace()
        let value = try reader.parseValue()
        reader.skipWhitespace()
        if reader.pos != reader.count {
            throw reader.error("unexpected data after the JSON value")
        }
        return value
    }

    private let base: UnsafePointer<UInt8>
    private let count: Int
    private let maxDepth: Int
    private let reading: JSONTextReading
    private var builder: Builder
    private var pos = 0
    private var depth = 0
    private var scratch: [UInt8] = []
    /// A string's content with what is not UTF-8 made U+FFFD (`asGo`).
    private var repaired: [UInt8] = []

    private init(
        base: UnsafePointer<UInt8>, count: Int, maxDepth: Int, reading: JSONTextReading, builder: Builder
    ) {
        self.base = base
        self.count = count
        self.maxDepth = maxDepth
        self.reading = reading
        self.builder = builder
    }

    private func error(_ reason: String) -> JSONParseError {
        JSONParseError(offset: pos, reason: reason)
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while pos < count {
            switch base[pos] {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    /// Reads one value, and every value inside it, with the containers
    /// open around the one being read kept in lists, not in the call
    /// stack: a text nested as deep as `maxDepth` allows (Go reads 10,000
    /// levels) never runs a thread out of stack. Each container is changed
    /// where it lies in its list (taken out of it, it would be copied on
    /// every change while the list still held it).
    private mutating func parseValue() throws(JSONParseError) -> Builder.Value {
        // Whether each open container is an object (else an array),
        // innermost last; the objects with the key whose value is read.
        var isObject: [Bool] = []
        var objects: [Builder.Object] = []
        var keys: [Builder.Key] = []
        var arrays: [Builder.Array] = []
        // Room for the nesting of most documents at once (a manifest's is
        // four), so that the lists do not grow one level at a time.
        isObject.reserveCapacity(16)
        objects.reserveCapacity(16)
        keys.reserveCapacity(16)
        arrays.reserveCapacity(16)
        reading: while true {
            guard pos < count else { throw error("unexpected end of input") }
            var value: Builder.Value
            switch base[pos] {
            case UInt8(ascii: "{"):
                try enterContainer()
                pos += 1  // {
                let object = builder.beginObject()
                skipWhitespace()
                guard pos < count && base[pos] == UInt8(ascii: "}") else {
                    keys.append(try readKey(first: true))
                    objects.append(object)
                    isObject.append(true)
                    continue reading
                }
                pos += 1
                depth -= 1
                value = builder.endObject(object)
            case UInt8(ascii: "["):
                try enterContainer()
                pos += 1  // [
                let array = builder.beginArray()
                skipWhitespace()
                guard pos < count && base[pos] == UInt8(ascii: "]") else {
                    guard pos < count else { throw error("unexpected end of input in array") }
                    arrays.append(array)
                    isObject.append(false)
                    continue reading
                }
                pos += 1
                depth -= 1
                value = builder.endArray(array)
            case UInt8(ascii: "\""):
                let token = try parseString()
                guard let string = withContent(of: token, { $0.string($1, content: $2) }) else {
                    throw invalidUTF8(token)
                }
                value = string
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = builder.bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = builder.bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = builder.null()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = pos
                try parseNumber()
                value = builder.number(UnsafeBufferPointer(start: base + start, count: pos - start), at: start)
            default:
                throw error("unexpected character")
            }
            // A value read: it goes into the container around it, which
            // either reads on or closes, itself a value read.
            while let inObject = isObject.last {
                if inObject {
                    builder.add(keys.removeLast(), value, to: &objects[objects.count - 1])
                    skipWhitespace()
                    guard pos < count else { throw error("unexpected end of input in object") }
                    switch base[pos] {
                    case UInt8(ascii: ","):
                        pos += 1
                        skipWhitespace()
                        keys.append(try readKey(first: false))
                        continue reading
                    case UInt8(ascii: "}"):
                        pos += 1
                        depth -= 1
                        isObject.removeLast()
                        value = builder.endObject(objects.removeLast())
                    default:
                        throw error("expected ',' or '}' in object")
                    }
                } else {
                    builder.add(value, to: &arrays[arrays.count - 1])
                    skipWhitespace()
                    guard pos < count else { throw error("unexpected end of input in array") }
                    switch base[pos] {
                    case UInt8(ascii: ","):
                        pos += 1
                        skipWhitespace()
                        guard pos < count else { throw error("unexpected end of input in array") }
                        if base[pos] == UInt8(ascii: "]") { throw error("trailing comma in array") }
                        continue reading
                    case UInt8(ascii: "]"):
                        pos += 1
                        depth -= 1
                        isObject.removeLast()
                        value = builder.endArray(arrays.removeLast())
                    default:
                        throw error("expected ',' or ']' in array")
                    }
                }
            }
            return value
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let n = literal.utf8CodeUnitCount
        guard count - pos >= n else { throw error("invalid literal") }
        let lit = literal.utf8Start
        for i in 0..<n where base[pos + i] != lit[i] {
            throw error("invalid literal")
        }
        pos += n
    }

    private mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        if depth > maxDepth {
            throw JSONParseError(offset: pos, reason: "nesting deeper than \(maxDepth)", isNestingLimit: true)
        }
    }

    /// Reads an object's key and the `:` after it (`first`: right after
    /// the `{`, where a `}` is no trailing comma).
    private mutating func readKey(first: Bool) throws(JSONParseError) -> Builder.Key {
        guard pos < count else { throw error("unexpected end of input in object") }
        guard base[pos] == UInt8(ascii: "\"") else {
            if base[pos] == UInt8(ascii: "}") && !first {
                throw error("trailing comma in object")
            }
            throw error("expected a string key")
        }
        let token = try parseString()
        guard let key = withContent(of: token, { $0.key($1, content: $2) }) else { throw invalidUTF8(token) }
        skipWhitespace()
        guard pos < count, base[pos] == UInt8(ascii: ":") else {
            throw error("expected ':' after object key")
        }
        pos += 1
        skipWhitespace()
        return key
    }

    /// Moves past a number, checking its form.
    private mutating func parseNumber() throws(JSONParseError) {
        if base[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < count, isDigit(base[pos]) else { throw error("invalid number") }
        if base[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < count && isDigit(base[pos]) { throw error("leading zero in number") }
        } else {
            while pos < count && isDigit(base[pos]) { pos += 1 }
        }
        if pos < count && base[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < count, isDigit(base[pos]) else { throw error("invalid fraction in number") }
            while pos < count && isDigit(base[pos]) { pos += 1 }
        }
        if pos < count && (base[pos] == UInt8(ascii: "e") || base[pos] == UInt8(ascii: "E")) {
            pos += 1
            if pos < count && (base[pos] == UInt8(ascii: "+") || base[pos] == UInt8(ascii: "-")) {
                pos += 1
            }
            guard pos < count, isDigit(base[pos]) else { throw error("invalid exponent in number") }
            while pos < count && isDigit(base[pos]) { pos += 1 }
        }
    }

    @inline(__always)
    private func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    /// What `make` makes of a string's decoded content: the input's bytes,
    /// or the scratch copy the escapes were decoded into.
    @inline(__always)
    private mutating func withContent<T>(
        of token: JSONStringToken, _ make: (inout Builder, JSONStringToken, UnsafeBufferPointer<UInt8>) -> T?
    ) -> T? {
        let made: T?
        if token.escaped {
            let decoded = scratch
            made = decoded.withUnsafeBufferPointer { make(&builder, token, $0) }
        } else {
            made = make(&builder, token, UnsafeBufferPointer(start: base + token.start, count: token.end - token.start))
        }
        guard made == nil, reading == .asGo else { return made }
        // Not UTF-8: each byte that is not, U+FFFD, as Go reads it; handed
        // on as decoded content (a builder never reads it in place).
        repaired.removeAll(keepingCapacity: true)
        if token.escaped {
            GoUTF8.appendRepaired(scratch, to: &repaired)
        } else {
            GoUTF8.appendRepaired(
                UnsafeBufferPointer(start: base + token.start, count: token.end - token.start), to: &repaired)
        }
        let repairedToken = JSONStringToken(start: token.start, end: token.end, escaped: true, ascii: false)
        let text = repaired
        return text.withUnsafeBufferPointer { make(&builder, repairedToken, $0) }
    }

    /// The error for a string whose content is not UTF-8: at its start
    /// when it held no escapes, else after it.
    private mutating func invalidUTF8(_ token: JSONStringToken) -> JSONParseError {
        if !token.escaped { pos = token.start }
        return error("invalid UTF-8 in string")
    }

    /// Reads a string starting at its opening quote, decoding its escapes
    /// (into `scratch`) when it has any. Its UTF-8 is checked by the builder.
    private mutating func parseString() throws(JSONParseError) -> JSONStringToken {
        pos += 1  // opening quote
        let start = pos
        var highBits: UInt8 = 0
        // Fast path: no escapes.
        pos = StringScan.plainEnd(base, from: pos, to: count, highBits: &highBits)
        guard pos < count else { throw error("unterminated string") }
        if base[pos] == UInt8(ascii: "\"") {
            pos += 1
            return JSONStringToken(start: start, end: pos - 1, escaped: false, ascii: highBits & 0x80 == 0)
        }
        if base[pos] < 0x20 { throw error("control character in string") }
        // Slow path: copy into scratch, decoding escapes.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: base + start, count: pos - start))
        while pos < count {
            let b = base[pos]
            switch b {
            case UInt8(ascii: "\""):
                pos += 1
                return JSONStringToken(start: start, end: pos - 1, escaped: true, ascii: highBits & 0x80 == 0)
            case UInt8(ascii: "\\"):
                pos += 1
                try parseEscape()
            default:
                if b < 0x20 { throw error("control character in string") }
                if b >= 0x80 { highBits |= b }
                scratch.append(b)
                pos += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func parseEscape() throws(JSONParseError) {
        guard pos < count else { throw error("unterminated string") }
        let c = base[pos]
        pos += 1
        switch c {
        case UInt8(ascii: "\""): scratch.append(0x22)
        case UInt8(ascii: "\\"): scratch.append(0x5C)
        case UInt8(ascii: "/"): scratch.append(0x2F)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if reading == .asGo && scalar >= 0xD800 && scalar <= 0xDFFF {
                appendUTF8(goScalar(surrogate: scalar))
                return
            }
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard count - pos >= 6, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u")
                else { throw error("lone surrogate in string") }
                pos += 2
                let low = try parseHex4()
                guard low >= 0xDC00 && low <= 0xDFFF else { throw error("lone surrogate in string") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw error("lone surrogate in string")
            }
            appendUTF8(scalar)
        default:
            pos -= 1
            throw error("invalid escape in string")
        }
    }

    /// What Go reads for an escaped surrogate: with the escaped low
    /// surrogate after a high one, their pair (both read); else U+FFFD,
    /// and what follows is read on its own.
    private mutating func goScalar(surrogate high: UInt32) -> UInt32 {
        guard high <= 0xDBFF, count - pos >= 6, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u")
        else { return 0xFFFD }
        let resume = pos
        pos += 2
        guard let low = try? parseHex4(), low >= 0xDC00 && low <= 0xDFFF else {
            pos = resume
            return 0xFFFD
        }
        return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard count - pos >= 4 else { throw error("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = base[pos]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            pos += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | (scalar >> 6)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | (scalar >> 12)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            scratch.append(UInt8(0xF0 | (scalar >> 18)))
            scratch.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }
}
