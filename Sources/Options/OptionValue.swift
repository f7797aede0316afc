/// Parsers for the kinds of value options take, each bounded: a value over
/// its maximum is refused when parsed, not discovered when used.
public enum OptionValue {
    /// An integer from 1 to 10,000.
    public static func positiveInt(_ text: String, _ flag: String) throws(ConfigurationError) -> Int {
        guard let n = Int(text), n > 0, n <= 10_000 else {
            throw ConfigurationError(message: "\(flag): expected an integer from 1 to 10000, got '\(text)'")
        }
        return n
    }

    /// Sizes: a number of bytes with an optional unit (B, K/KB/KiB, M/MB/MiB,
    /// G/GB/GiB; binary multiples either way). At most `max` bytes.
    public static func byteSize(_ text: String, _ flag: String, allowZero: Bool, max: Int) throws(ConfigurationError)
        -> Int
    {
        let trimmed = trimmed(text)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let unit = trimmed.dropFirst(digits.count).lowercased()
        let multipliers: [String: Int] = [
            "": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
            "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
        ]
        guard let n = Int(digits), let multiplier = multipliers[unit],
            n <= Int.max / multiplier, allowZero || n > 0
        else {
            throw ConfigurationError(message: "\(flag): expected a size such as 64MiB, got '\(text)'")
        }
        guard n * multiplier <= max else {
            throw ConfigurationError(message: "\(flag): '\(text)' is over the largest allowed, \(max) bytes")
        }
        return n * multiplier
    }

    /// Durations: a number with a unit (ms, s, m, h); a bare number is
    /// seconds. At most `max` seconds, and a non-zero one at least 1 ms.
    public static func duration(_ text: String, _ flag: String, allowZero: Bool, max: Double) throws(ConfigurationError)
        -> Double
    {
        let trimmed = trimmed(text)
        let number = trimmed.prefix { ($0.isASCII && $0.isNumber) || $0 == "." }
        let unit = trimmed.dropFirst(number.count).lowercased()
        let multipliers: [String: Double] = ["": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600]
        guard let n = Double(number), let multiplier = multipliers[unit], n.isFinite,
            allowZero ? n >= 0 : n > 0
        else {
            throw ConfigurationError(message: "\(flag): expected a duration such as 30s or 500ms, got '\(text)'")
        }
        let seconds = n * multiplier
        guard seconds <= max else {
            throw ConfigurationError(message: "\(flag): '\(text)' is over the longest allowed, \(Int(max)) s")
        }
        guard seconds == 0 || seconds >= 0.001 else {
            throw ConfigurationError(message: "\(flag): '\(text)' is under the shortest allowed, 1 ms")
        }
        return seconds
    }

    /// `host[:port]`: not empty, no scheme or path.
    public static func host(_ text: String, _ flag: String) throws(ConfigurationError) -> String {
        guard !text.isEmpty, !text.contains("/") else {
            throw ConfigurationError(message: "\(flag): expected host[:port], got '\(text)'")
        }
        return text
    }

    /// `text` without leading and trailing whitespace.
    public static func trimmed<S: StringProtocol>(_ text: S) -> String {
        var s = Substring(text)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
