/// Writes JSON values as compact UTF-8 text.
///
/// Only `"`, `\` and control characters are escaped (never `/`); numbers are
/// written as their stored text; object members in their stored order.
public enum JSONWriter {
    /// Appends the compact text of `value` to `buffer`.
    public static func write(_ value: JSONValue, into buffer: inout [UInt8]) {
        switch value {
        case .null: buffer.append(contentsOf: nullBytes)
        case .bool(let b): buffer.append(contentsOf: b ? trueBytes : falseBytes)
        case .number(let text): writeNumber(text, into: &buffer)
        case .string(let s): writeString(s, into: &buffer)
        case .array(let elements):
            buffer.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                write(element, into: &buffer)
            }
            buffer.append(UInt8(ascii: "]"))
        case .object(let object):
            buffer.append(UInt8(ascii: "{"))
            var first = true
            for member in object.members {
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                writeString(member.key, into: &buffer)
                buffer.append(UInt8(ascii: ":"))
                write(member.value, into: &buffer)
            }
            buffer.append(UInt8(ascii: "}"))
        }
    }

    /// The compact text of `value` as bytes.
    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64)
        write(value, into: &buffer)
        return buffer
    }

    /// Appends `s` as a quoted, escaped JSON string.
    public static func writeString(_ s: String, into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            guard let base = utf8.baseAddress else { return }
            var runStart = 0
            var highBits: UInt8 = 0
            while true {
                // The bytes up to the next one that needs an escape, at once.
                let special = StringScan.plainEnd(base, from: runStart, to: utf8.count, highBits: &highBits)
                if runStart < special {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<special]))
                }
                guard special < utf8.count else { return }
                runStart = special + 1
                let b = utf8[special]
                buffer.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""): buffer.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\"))
                case 0x0A: buffer.append(UInt8(ascii: "n"))
                case 0x0D: buffer.append(UInt8(ascii: "r"))
                case 0x09: buffer.append(UInt8(ascii: "t"))
                case 0x08: buffer.append(UInt8(ascii: "b"))
                case 0x0C: buffer.append(UInt8(ascii: "f"))
                default:
                    buffer.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30])
                    buffer.append(hexDigits[Int(b >> 4)])
                    buffer.append(hexDigits[Int(b & 0xF)])
                }
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// A number's stored text when it is an RFC 8259 number; anything else
    /// (a bug upstream) is written as a string, so the output stays JSON.
    private static func writeNumber(_ text: String, into buffer: inout [UInt8]) {
        var text = text
        let valid = text.withUTF8 { utf8 in
            guard isNumber(utf8) else { return false }
            buffer.append(contentsOf: utf8)
            return true
        }
        if !valid { writeString(text, into: &buffer) }
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

    private static let nullBytes: [UInt8] = Array("null".utf8)
    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
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
        }
    }

    /// The compact JSON text of this value.
    public var jsonText: String {
        String(decoding: JSONWriter.bytes(self), as: UTF8.self)
    }
}
