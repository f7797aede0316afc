import JSON

/// go-yaml v2's resolution of plain (unquoted) scalars, and Go's
/// `encoding/json` spelling of the numbers it yields.
enum ScalarResolver {
    static let nulls: Set<String> = ["", "~", "null", "Null", "NULL"]
    static let trues: Set<String> = ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]
    static let falses: Set<String> = ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]
    static let nonFinite: Set<String> = [
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
    ]

    static func resolve(_ text: String) throws(YAMLError) -> JSONValue {
        if nulls.contains(text) { return .null }
        if trues.contains(text) { return .bool(true) }
        if falses.contains(text) { return .bool(false) }
        if nonFinite.contains(text) { throw YAMLError(message: "'\(text)' has no JSON form") }
        guard let first = text.utf8.first else { return .string(text) }
        switch first {
        case UInt8(ascii: "."):
            if isYAMLFloat(text), let value = Double(text), value.isFinite { return .number(goJSONNumber(value)) }
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let plain = String(text.filter { $0 != "_" })
            if let integer = parseGoInteger(plain) { return .number(integer) }
            // Out of float64's range (`1e400`): go-yaml v2's ParseFloat fails
            // and the scalar stays a string.
            if isYAMLFloat(plain), let value = Double(plain), value.isFinite { return .number(goJSONNumber(value)) }
        default:
            break
        }
        return .string(text)
    }

    /// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`: optional sign,
    /// `0x`/`0o`/`0b` prefixes or a leading `0` for octal; the decimal text
    /// of the value, or nil when it is not an integer that fits.
    static func parseGoInteger(_ text: String) -> String? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        let lower = digits.lowercased()
        if lower.hasPrefix("0x") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if lower.hasPrefix("0b") {
            radix = 2
            digits = digits.dropFirst(2)
        } else if lower.hasPrefix("0o") {
            radix = 8
            digits = digits.dropFirst(2)
        } else if digits.count > 1 && digits.hasPrefix("0") {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }),
            let magnitude = UInt64(digits, radix: radix)
        else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == 0 ? "0" : "-\(magnitude)"
        }
        return String(magnitude)
    }

    /// A scalar of any style with an explicit core tag (`!!null`,
    /// `!!bool`, `!!int`, `!!float`, `!!timestamp`), as go-yaml v2 reads
    /// it: resolved as a plain scalar, then refused unless it is what the
    /// tag says (an int64 is also a float).
    static func resolve(_ text: String, tag: String) throws(YAMLError) -> JSONValue {
        let resolved = try resolve(text)
        let matches: Bool
        switch (tag, resolved) {
        case ("null", .null), ("bool", .bool): matches = true
        case ("int", .number): matches = parseGoInteger(String(text.filter { $0 != "_" })) != nil
        case ("float", .number(let number)):
            let integer = parseGoInteger(String(text.filter { $0 != "_" }))
            matches = integer == nil || Int64(number) != nil
        case ("timestamp", .string): matches = isGoTimestamp(text)
        default: matches = false
        }
        guard matches else { throw YAMLError(message: "cannot decode `\(text.prefix(64))` as a !!\(tag)") }
        return resolved
    }

    /// Whether go-yaml v2 reads `text` as a timestamp: `YYYY-M-D`, with a
    /// time `h:m:s[.f]` after `T`, `t` or a space, a zone (`Z`, `±hh:mm`)
    /// only after `T` or `t`, each field in its range (Go's `time.Parse`).
    static func isGoTimestamp(_ text: String) -> Bool {
        var rest = Substring(text)
        func number(_ minDigits: Int, _ maxDigits: Int) -> Int? {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard digits.count >= minDigits, digits.count <= maxDigits else { return nil }
            rest = rest.dropFirst(digits.count)
            return Int(digits)
        }
        func take(_ character: Character) -> Bool {
            guard rest.first == character else { return false }
            rest = rest.dropFirst()
            return true
        }
        guard let year = number(4, 4), take("-"), let month = number(1, 2), take("-"), let day = number(1, 2),
            (1...12).contains(month)
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return false }
        if rest.isEmpty { return true }
        guard let separator = rest.first, "Tt ".contains(separator) else { return false }
        rest = rest.dropFirst()
        guard let hour = number(1, 2), hour < 24, take(":"), let minute = number(1, 2), minute < 60, take(":"),
            let second = number(1, 2), second < 60
        else { return false }
        if take(".") { guard number(1, Int.max) != nil else { return false } }
        if separator == " " { return rest.isEmpty }
        if take("Z") { return rest.isEmpty }
        guard let sign = rest.first, sign == "+" || sign == "-" else { return false }
        rest = rest.dropFirst()
        guard let zoneHour = number(2, 2), zoneHour < 24, take(":"), let zoneMinute = number(2, 2), zoneMinute < 60
        else { return false }
        return rest.isEmpty
    }

    /// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
    static func isYAMLFloat(_ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        func digits() -> Int {
            var n = 0
            while let b = bytes.first, b >= 0x30 && b <= 0x39 {
                bytes = bytes.dropFirst()
                n += 1
            }
            return n
        }
        if let b = bytes.first, b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard digits() > 0 else { return false }
        } else {
            guard digits() > 0 else { return false }
            if bytes.first == UInt8(ascii: ".") {
                bytes = bytes.dropFirst()
                _ = digits()
            }
        }
        if let e = bytes.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if let b = bytes.first, b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }

    /// A float64 as Go's `encoding/json` writes it: shortest round-trip
    /// digits, plain notation for 1e-6 <= |x| < 1e21, else `1e+21` style.
    static func goJSONNumber(_ value: Double) -> String {
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        let (digits, exponent) = shortestDigits(abs(value))
        let sign = value < 0 ? "-" : ""
        let magnitude = abs(value)
        if magnitude < 1e-6 || magnitude >= 1e21 {
            // d.ddde±x with the exponent's leading zeros dropped.
            var text = String(digits.first!)
            if digits.count > 1 { text += "." + digits.dropFirst() }
            let e = exponent - 1
            return sign + text + "e" + (e < 0 ? "-" : "+") + String(abs(e))
        }
        // Decimal point after `exponent` digits.
        if exponent <= 0 {
            return sign + "0." + String(repeating: "0", count: -exponent) + digits
        }
        if exponent >= digits.count {
            return sign + digits + String(repeating: "0", count: exponent - digits.count)
        }
        let split = digits.index(digits.startIndex, offsetBy: exponent)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// The shortest digits that round-trip `value` (> 0) and the decimal
    /// exponent e such that value = 0.d1d2... x 10^e.
    static func shortestDigits(_ value: Double) -> (String, Int) {
        // Swift's description is the shortest round-trip form.
        let text = value.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            mantissa = text[..<e]
        }
        var integerPart = mantissa
        var fraction: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            integerPart = mantissa[..<dot]
            fraction = mantissa[mantissa.index(after: dot)...]
        }
        var digits = String(integerPart) + fraction
        var pointPosition = integerPart.count + exponent
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            pointPosition -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (digits, pointPosition)
    }
}
