/// Writes JSON values as compact UTF-8 text.
///
/// Only `"`, `\` and control characters are escaped (never `/`); numbers are
/// written as their stored text; object members in their stored order.
public enum JSONWriter {
    /// Appends the compact text of `value` to `buffer`.
    public static func write(_ value: JSONValue, into buffer: inout [UInt8]) {
        var out = OutputBytes(capacity: 256)
        write(value, into: &out)
        out.copy(into: &buffer)
    }

    /// The compact text of `value` as bytes.
    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var out = OutputBytes(capacity: 256)
        write(value, into: &out)
        return out.array()
    }

    /// Appends `s` as a quoted, escaped JSON string.
    public static func writeString(_ s: String, into buffer: inout [UInt8]) {
        var out = OutputBytes(capacity: s.utf8.count + 16)
        writeString(s, into: &out)
        out.copy(into: &buffer)
    }

    /// Appends the compact text of `value` to `out`.
    package static func write(_ value: JSONValue, into out: inout OutputBytes) {
        switch value {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .number(let text): writeNumber(text, into: &out)
        case .string(let s): writeString(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            var first = true
            for member in object.members {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(member.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .encoded(let text): out.append(text.bytes)
        }
    }

    /// Appends `s` as a quoted, escaped JSON string to `out`.
    package static func writeString(_ s: String, into out: inout OutputBytes) {
        var s = s
        s.withUTF8 { writeString(utf8: $0, into: &out) }
    }

    /// Appends the UTF-8 text `utf8` as a quoted, escaped JSON string.
    package static func writeString(utf8: UnsafeBufferPointer<UInt8>, into out: inout OutputBytes) {
        out.append(UInt8(ascii: "\""))
        defer { out.append(UInt8(ascii: "\"")) }
        guard let base = utf8.baseAddress else { return }
        var runStart = 0
        var highBits: UInt8 = 0
        while true {
            // The bytes up to the next one that needs an escape, at once.
            let special = StringScan.plainEnd(base, from: runStart, to: utf8.count, highBits: &highBits)
            out.append(UnsafeBufferPointer(rebasing: utf8[runStart..<special]))
            guard special < utf8.count else { return }
            runStart = special + 1
            let b = utf8[special]
            out.append(UInt8(ascii: "\\"))
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            default:
                out.append("u00")
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0xF)])
            }
        }
    }

    /// A number's stored text when it is an RFC 8259 number; anything else
    /// (a bug upstream) is written as a string, so the output stays JSON.
    private static func writeNumber(_ text: String, into out: inout OutputBytes) {
        var text = text
        let valid = text.withUTF8 { utf8 in
            guard isNumber(utf8) else { return false }
            out.append(utf8)
            return true
        }
        if !valid { writeString(text, into: &out) }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    public static func isNumber(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = bytes.count
        func isDigit(_ index: Int) -> Bool { index < n && bytes[index] >= 0x30 && bytes[index] <= 0x39 }
        if i < n && bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { return false }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < n && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard isDigit(i) else { return false }
            while isDigit(i) { i += 1 }
        }
        if i < n && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < n && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard isDigit(i) else { return false }
            while isDigit(i) { i += 1 }
        }
        return i == n
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

extension JSONValue {
    /// The length in bytes of this value's compact text, not counting the
    /// escapes its strings may need: a cheap measure of its size.
    public var textLengthWithoutEscapes: Int {
        switch self {
        case .null: return 4
        case .bool(let b): return b ? 4 : 5
        case .number(let text): return text.utf8.count
        case .string(let s): return s.utf8.count + 2
        case .array(let elements):
            return elements.reduce(1 + max(1, elements.count)) { $0 + $1.textLengthWithoutEscapes }
        case .object(let object):
            return object.members.reduce(1 + max(1, object.members.count)) {
                $0 + $1.key.utf8.count + 3 + $1.value.textLengthWithoutEscapes
            }
        case .encoded(let text): return text.bytes.count
        }
    }

    /// The compact JSON text of this value.
    public var jsonText: String {
        String(decoding: JSONWriter.bytes(self), as: UTF8.self)
    }
}
