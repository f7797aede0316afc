import Glibc
import Locking
import JSON
import Synchronization

/// How much is logged.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warn, error

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warn", "warning": self = .warn
        case "error": self = .error
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .debug: return "debug"
        case .info: return "info"
        case .warn: return "warn"
        case .error: return "error"
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// The shape of a log line.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-01-01T00:00:00.000Z info message key=value`
    case text
    /// One JSON object per line: `{"time":..,"level":..,"msg":..,...}`
    case json
}

/// Writes log lines to stderr (never stdout, which carries the protocol).
///
/// Each line goes out in one `write(2)`, so concurrent lines never mix.
/// Callers must not pass credentials or tokens in messages or fields.
public final class Logger: Sendable {
    public let level: LogLevel
    public let format: LogFormat
    private let fd: Int32
    private let writeLock = Mutex(())

    public init(level: LogLevel = .info, format: LogFormat = .text, fd: Int32 = 2) {
        self.level = level
        self.format = format
        self.fd = fd
    }

    /// A logger that writes nothing.
    public static let disabled = Logger(level: .error, fd: -1)

    public func debug(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.debug, message(), fields())
    }

    public func info(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.info, message(), fields())
    }

    public func warn(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.warn, message(), fields())
    }

    public func error(_ message: @autoclosure () -> String, _ fields: @autoclosure () -> [(String, String)] = []) {
        log(.error, message(), fields())
    }

    /// Whether lines of `level` are written.
    public func isEnabled(_ level: LogLevel) -> Bool { fd >= 0 && level >= self.level }

    private func log(_ level: LogLevel, _ message: String, _ fields: [(String, String)]) {
        guard isEnabled(level) else { return }
        var line: [UInt8] = []
        let time = Self.timestamp()
        switch format {
        case .text:
            line.append(contentsOf: "\(time) \(level.name) ".utf8)
            Self.appendEscapingControls(message, quoted: false, to: &line)
            for (key, value) in fields {
                line.append(contentsOf: " \(key)=".utf8)
                let plain = !value.isEmpty && !value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" }
                Self.appendEscapingControls(value, quoted: !plain, to: &line)
            }
        case .json:
            var object = JSONObject()
            object.append("time", .string(time))
            object.append("level", .string(level.name))
            object.append("msg", .string(message))
            for (key, value) in fields { object.append(key, .string(value)) }
            JSONWriter.write(.object(object), into: &line)
        }
        line.append(0x0A)
        writeLock.withLock { _ in
            _ = line.withUnsafeBytes { writeAll(fd, $0) }
        }
    }

    /// `text` with every control character written as `\\u00XX`, for a
    /// line meant for a person's terminal (`ocirpc call`'s error line),
    /// where a registry's words may end up.
    package static func escapingControls(_ text: String) -> String {
        var line: [UInt8] = []
        appendEscapingControls(text, quoted: false, to: &line)
        return String(decoding: line, as: UTF8.self)
    }

    /// `text`, quoted when asked (`"` and `\\` escaped then), with every
    /// control character written as `\\u00XX`: a line of text is one line,
    /// and a value that came from outside (a ref, a method name) can
    /// neither start a forged line nor send a terminal its escapes.
    static func appendEscapingControls(_ text: String, quoted: Bool, to line: inout [UInt8]) {
        // Mostly there is nothing to escape (0xC2 leads U+0080-U+00BF).
        if !quoted && !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 }) {
            line.append(contentsOf: text.utf8)
            return
        }
        if quoted { line.append(UInt8(ascii: "\"")) }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0..<0x20, 0x7F...0x9F:
                let hex = Array("0123456789abcdef".utf8)
                line.append(contentsOf: "\\u00".utf8)
                line.append(hex[Int(scalar.value >> 4)])
                line.append(hex[Int(scalar.value & 0xF)])
            case 0x22 where quoted, 0x5C where quoted:
                line.append(UInt8(ascii: "\\"))
                line.append(UInt8(scalar.value))
            default:
                line.append(contentsOf: String(scalar).utf8)
            }
        }
        if quoted { line.append(UInt8(ascii: "\"")) }
    }

    /// Current UTC time as RFC 3339 with milliseconds.
    static func timestamp() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}
