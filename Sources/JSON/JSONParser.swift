/// Why a byte sequence is not the JSON text we accept, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset of the problem in the input.
    public var offset: Int
    /// A short human-readable reason, e.g. "trailing comma in object".
    public var reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Rejects trailing commas, invalid escapes, lone surrogates, invalid UTF-8,
/// control characters in strings, leading zeros, trailing data and nesting
/// deeper than `maxDepth`. Numbers are kept as their exact text.
public struct JSONParser: ~Copyable {
    /// Nesting deeper than this is refused (protects the stack).
    public static let defaultMaxDepth = 512

    /// Parses exactly one JSON value (surrounded by optional whitespace).
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(offset: 0, reason: "empty input")
        }
        var parser = JSONParser(
            base: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.pos != parser.count {
            throw parser.error("unexpected data after the JSON value")
        }
        return value
    }

    /// Parses a byte array.
    public static func parse<Bytes: Collection<UInt8>>(
        _ bytes: Bytes, maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable {
            buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth)
            }
        }
        if let result { return try result.get() }
        return try parse(Array(bytes), maxDepth: maxDepth)
    }

    /// Parses the UTF-8 text of a string.
    public static func parse(
        _ text: String, maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    private let base: UnsafePointer<UInt8>
    private let count: Int
    private let maxDepth: Int
    private var pos = 0
    private var depth = 0
    private var scratch: [UInt8] = []

    private init(base: UnsafePointer<UInt8>, count: Int, maxDepth: Int) {
        self.base = base
        self.count = count
        self.maxDepth = maxDepth
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

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard pos < count else { throw error("unexpected end of input") }
        switch base[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error("unexpected character")
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
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)") }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        pos += 1  // {
        var members: [JSONObject.Member] = []
        skipWhitespace()
        if pos < count && base[pos] == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return .object(JSONObject(members))
        }
        while true {
            guard pos < count else { throw error("unexpected end of input in object") }
            guard base[pos] == UInt8(ascii: "\"") else {
                if base[pos] == UInt8(ascii: "}") && !members.isEmpty {
                    throw error("trailing comma in object")
                }
                throw error("expected a string key")
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < count, base[pos] == UInt8(ascii: ":") else {
                throw error("expected ':' after object key")
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue()
            members.append(JSONObject.Member(key: key, value: value))
            skipWhitespace()
            guard pos < count else { throw error("unexpected end of input in object") }
            switch base[pos] {
            case UInt8(ascii: ","):
                pos += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                pos += 1
                depth -= 1
                return .object(JSONObject(members))
            default:
                throw error("expected ',' or '}' in object")
            }
        }
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        pos += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if pos < count && base[pos] == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            guard pos < count else { throw error("unexpected end of input in array") }
            if base[pos] == UInt8(ascii: "]") { throw error("trailing comma in array") }
            elements.append(try parseValue())
            skipWhitespace()
            guard pos < count else { throw error("unexpected end of input in array") }
            switch base[pos] {
            case UInt8(ascii: ","):
                pos += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                pos += 1
                depth -= 1
                return .array(elements)
            default:
                throw error("expected ',' or ']' in array")
            }
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = pos
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
        return String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
    }

    @inline(__always)
    private func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    /// Parses a string starting at its opening quote.
    private mutating func parseString() throws(JSONParseError) -> String {
        pos += 1  // opening quote
        let start = pos
        var highBits: UInt8 = 0
        // Fast path: no escapes.
        pos = StringScan.plainEnd(base, from: pos, to: count, highBits: &highBits)
        guard pos < count else { throw error("unterminated string") }
        if base[pos] == UInt8(ascii: "\"") {
            let segment = UnsafeBufferPointer(start: base + start, count: pos - start)
            pos += 1
            if highBits & 0x80 == 0 {
                return String(decoding: segment, as: UTF8.self)
            }
            guard let s = String(validating: segment, as: UTF8.self) else {
                pos = start
                throw error("invalid UTF-8 in string")
            }
            return s
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
                if highBits & 0x80 == 0 {
                    return String(decoding: scratch, as: UTF8.self)
                }
                guard let s = String(validating: scratch, as: UTF8.self) else {
                    throw error("invalid UTF-8 in string")
                }
                return s
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
