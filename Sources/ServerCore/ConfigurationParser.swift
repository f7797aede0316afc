import Glibc
import Logging

/// A setting that could not be used; the process exits 2 with `message`.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// What the command line asks for.
public enum Invocation: Equatable {
    case run(ServerConfiguration)
    case help
    case version
}

/// Reads settings from `OCIRPC_*` environment variables, then the command
/// line (which wins). Every option has both forms; see `usage`.
public enum ConfigurationParser {
    /// One option: its flag, variable, value name and how it applies.
    struct Option: Sendable {
        let flag: String
        let variable: String
        let valueName: String
        let help: String
        let repeatable: Bool
        let apply: @Sendable (inout ServerConfiguration, String) throws(ConfigurationError) -> Void
    }

    static let options: [Option] = [
        Option(flag: "--max-concurrency", variable: "OCIRPC_MAX_CONCURRENCY", valueName: "N",
               help: "bounded registry workers (default max(8, 4 x cores))", repeatable: false) { c, v throws(ConfigurationError) in
            c.maxConcurrency = try positiveInt(v, "--max-concurrency")
        },
        Option(flag: "--cache-bytes", variable: "OCIRPC_CACHE_BYTES", valueName: "SIZE",
               help: "content cache budget, e.g. 256MiB (default 256MiB)", repeatable: false) { c, v throws(ConfigurationError) in
            c.cacheBytes = try byteSize(v, "--cache-bytes", allowZero: true, max: 64 << 30)
        },
        Option(flag: "--tag-ttl", variable: "OCIRPC_TAG_TTL", valueName: "DURATION",
               help: "how long a tag -> digest answer is reused, e.g. 60s (default 60s)", repeatable: false) { c, v throws(ConfigurationError) in
            c.tagTTL = try duration(v, "--tag-ttl", allowZero: true, max: 30 * 86_400)
        },
        Option(flag: "--platform", variable: "OCIRPC_PLATFORM", valueName: "OS/ARCH[/VARIANT]",
               help: "platform picked from image indexes (default linux/amd64)", repeatable: false) { c, v throws(ConfigurationError) in
            let parts = v.split(separator: "/", omittingEmptySubsequences: false)
            guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
                throw ConfigurationError(message: "--platform: expected os/arch or os/arch/variant, got '\(v)'")
            }
            c.platform = v
        },
        Option(flag: "--insecure-registry", variable: "OCIRPC_INSECURE_REGISTRY", valueName: "HOST[:PORT]",
               help: "use plain HTTP for this registry (repeatable; variable: comma-separated)", repeatable: true) { c, v throws(ConfigurationError) in
            guard !v.isEmpty, !v.contains("/") else {
                throw ConfigurationError(message: "--insecure-registry: expected host[:port], got '\(v)'")
            }
            c.insecureRegistries.append(v)
        },
        Option(flag: "--secure-registry", variable: "OCIRPC_SECURE_REGISTRY", valueName: "HOST[:PORT]",
               help: "use HTTPS for this registry even on loopback or a private address (repeatable)", repeatable: true) { c, v throws(ConfigurationError) in
            guard !v.isEmpty, !v.contains("/") else {
                throw ConfigurationError(message: "--secure-registry: expected host[:port], got '\(v)'")
            }
            c.secureRegistries.append(v)
        },
        Option(flag: "--ca-file", variable: "OCIRPC_CA_FILE", valueName: "PATH",
               help: "trust the CAs of this PEM bundle instead of the system's (default $SSL_CERT_FILE if set)", repeatable: false) { c, v throws(ConfigurationError) in
            guard access(v, R_OK) == 0 else {
                throw ConfigurationError(message: "--ca-file: cannot read '\(v)'")
            }
            c.caFile = v
        },
        Option(flag: "--mirror", variable: "OCIRPC_MIRROR", valueName: "REGISTRY=MIRROR",
               help: "try MIRROR (host[:port]) before REGISTRY (repeatable; variable: comma-separated)", repeatable: true) { c, v throws(ConfigurationError) in
            let parts = v.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError(message: "--mirror: expected REGISTRY=MIRROR, got '\(v)'")
            }
            // Credentials in a host would end up in logs and messages.
            guard !parts[1].contains("@"), !parts[1].contains("/") else {
                throw ConfigurationError(message: "--mirror: the mirror must be host[:port], without credentials or a path")
            }
            c.mirrors.append(v)
        },
        Option(flag: "--registries-conf", variable: "OCIRPC_REGISTRIES_CONF", valueName: "PATH",
               help: "mirrors and insecure registries from a containers registries.conf", repeatable: false) { c, v throws(ConfigurationError) in
            do throws(ConfigurationError) {
                c.registriesConf = try RegistriesConf.load(v)
            } catch {
                throw ConfigurationError(message: "--registries-conf: \(v): \(error.message)")
            }
        },
        Option(flag: "--timeout", variable: "OCIRPC_TIMEOUT", valueName: "DURATION",
               help: "seconds of silence (or under 1 KiB/s) before a registry request fails (default 30s)",
               repeatable: false) { c, v throws(ConfigurationError) in
            c.timeout = try duration(v, "--timeout", allowZero: false, max: 86_400)
        },
        Option(flag: "--request-timeout", variable: "OCIRPC_REQUEST_TIMEOUT", valueName: "DURATION",
               help: "total time for one registry request, retries included (default 10m)",
               repeatable: false) { c, v throws(ConfigurationError) in
            c.requestTimeout = try duration(v, "--request-timeout", allowZero: false, max: 86_400)
        },
        Option(flag: "--max-decompressed-bytes", variable: "OCIRPC_MAX_DECOMPRESSED_BYTES", valueName: "SIZE",
               help: "bytes one request may decompress, all layers together (default 8GiB)",
               repeatable: false) { c, v throws(ConfigurationError) in
            c.maxDecompressedBytes = try byteSize(v, "--max-decompressed-bytes", allowZero: false, max: 1 << 40)
        },
        Option(flag: "--retries", variable: "OCIRPC_RETRIES", valueName: "N",
               help: "retries on connection errors, 429, 502/503/504 (default 3)", repeatable: false) { c, v throws(ConfigurationError) in
            guard let n = Int(v), n >= 0, n <= 100 else {
                throw ConfigurationError(message: "--retries: expected an integer from 0 to 100, got '\(v)'")
            }
            c.retries = n
        },
        Option(flag: "--log-level", variable: "OCIRPC_LOG_LEVEL", valueName: "LEVEL",
               help: "debug, info, warn or error (default info); logs go to stderr", repeatable: false) { c, v throws(ConfigurationError) in
            guard let level = LogLevel(name: v) else {
                throw ConfigurationError(message: "--log-level: expected debug, info, warn or error, got '\(v)'")
            }
            c.logLevel = level
        },
        Option(flag: "--log-format", variable: "OCIRPC_LOG_FORMAT", valueName: "FORMAT",
               help: "text or json (default text)", repeatable: false) { c, v throws(ConfigurationError) in
            guard let format = LogFormat(rawValue: v) else {
                throw ConfigurationError(message: "--log-format: expected text or json, got '\(v)'")
            }
            c.logFormat = format
        },
        Option(flag: "--max-message-bytes", variable: "OCIRPC_MAX_MESSAGE_BYTES", valueName: "SIZE",
               help: "largest accepted message (default 64MiB)", repeatable: false) { c, v throws(ConfigurationError) in
            c.maxMessageBytes = try byteSize(v, "--max-message-bytes", allowZero: false, max: 1 << 30)
        },
    ]

    /// Parses `arguments` (without the program name) over `environment`.
    public static func parse(
        arguments: [String], environment: [String: String]
    ) throws(ConfigurationError) -> Invocation {
        var configuration = ServerConfiguration()
        for option in options {
            guard let value = environment[option.variable] else { continue }
            let values = option.repeatable
                ? value.split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty }
                : [value]
            for v in values {
                do {
                    try option.apply(&configuration, v)
                } catch {
                    throw ConfigurationError(message: "\(option.variable): " + error.message)
                }
            }
        }
        var commandLineLists: Set<String> = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            switch argument {
            case "-h", "--help": return .help
            case "-V", "--version": return .version
            default: break
            }
            let name: String
            var value: String?
            if let equals = argument.firstIndex(of: "=") , argument.hasPrefix("--") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            } else {
                name = argument
            }
            guard let option = options.first(where: { $0.flag == name }) else {
                throw ConfigurationError(message: "unknown option '\(argument)' (see --help)")
            }
            if value == nil {
                guard index < arguments.count else {
                    throw ConfigurationError(message: "\(name) needs a value (\(option.valueName))")
                }
                value = arguments[index]
                index += 1
            }
            // A repeatable option given on the command line replaces the
            // variable's list instead of adding to it.
            if option.repeatable && !commandLineLists.contains(name) {
                commandLineLists.insert(name)
                if name == "--insecure-registry" { configuration.insecureRegistries = [] }
                if name == "--secure-registry" { configuration.secureRegistries = [] }
                if name == "--mirror" { configuration.mirrors = [] }
            }
            try option.apply(&configuration, value!)
        }
        return .run(configuration)
    }

    /// The `--help` text.
    public static var usage: String {
        var lines = [
            "ocirpc \(ServerVersion.current): the ec.oci.* policy builtins as a JSON-RPC 2.0 server on stdio.",
            "",
            "Usage: ocirpc [options]",
            "",
            "Reads requests on stdin (one JSON message per line, or Content-Length framing),",
            "writes responses on stdout, logs on stderr. Send rpc.discover for the contract.",
            "",
            "Options (each also as an environment variable; the command line wins):",
        ]
        for option in options {
            let left = "  \(option.flag) \(option.valueName)"
            let pad = String(repeating: " ", count: max(1, 42 - left.count))
            lines.append(left + pad + option.help)
            lines.append(String(repeating: " ", count: 42) + "[\(option.variable)]")
        }
        lines.append("  -h, --help" + String(repeating: " ", count: 30) + "show this help")
        lines.append("  -V, --version" + String(repeating: " ", count: 27) + "show the version")
        lines.append("")
        lines.append("Credentials: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or ~/.docker/config.json,")
        lines.append("$XDG_RUNTIME_DIR/containers/auth.json, including credHelpers and credsStore.")
        return lines.joined(separator: "\n")
    }

    // MARK: - Values

    static func positiveInt(_ text: String, _ flag: String) throws(ConfigurationError) -> Int {
        guard let n = Int(text), n > 0, n <= 10_000 else {
            throw ConfigurationError(message: "\(flag): expected an integer from 1 to 10000, got '\(text)'")
        }
        return n
    }

    /// Sizes: a number of bytes with an optional unit (B, K/KB/KiB, M/MB/MiB,
    /// G/GB/GiB; binary multiples either way).
    /// At most `max` bytes.
    static func byteSize(_ text: String, _ flag: String, allowZero: Bool, max: Int) throws(ConfigurationError) -> Int {
        let trimmed = text.trimmingWhitespace
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
    static func duration(_ text: String, _ flag: String, allowZero: Bool, max: Double) throws(ConfigurationError) -> Double {
        let trimmed = text.trimmingWhitespace
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
}

extension StringProtocol {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
