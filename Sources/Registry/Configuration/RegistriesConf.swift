import FoundationEssentials
import Glibc
import Options

/// The mirrors and insecure registries of a containers `registries.conf`
/// (version 2, the `[[registry]]` tables podman and buildah read):
///
///     [[registry]]
///     location = "docker.io"
///     [[registry.mirror]]
///     location = "mirror.internal:5000"
///     insecure = true
///
/// Read in `[[registry]]`: `location` (or `prefix`), `insecure`,
/// `blocked` and `mirror-by-digest-only`; in `[[registry.mirror]]`:
/// `location`, `insecure` and `pull-from-mirror`. Any other key in those
/// tables is refused rather than ignored (it may be a security setting).
/// Tables ocirpc has no use for (`unqualified-search-registries`,
/// `[aliases]`, ...) are skipped. Entries for a namespace
/// (`docker.io/library`) are refused: mirrors apply to whole registries here.
public struct RegistriesConf: Sendable, Equatable {
    /// One mirror of one registry.
    public struct Mirror: Sendable, Equatable {
        public var registry: String
        public var mirror: RegistryMirror

        public init(registry: String, mirror: RegistryMirror) {
            self.registry = registry
            self.mirror = mirror
        }
    }

    /// Mirrors in file order.
    public var mirrorEntries: [Mirror] = []
    /// Registries and mirrors marked `insecure = true`.
    public var insecureRegistries: [String] = []
    /// Registries marked `blocked = true`: every request for them is refused.
    public var blockedRegistries: [String] = []

    /// `REGISTRY=MIRROR`, in file order (as `--mirror` takes them).
    public var mirrors: [String] { mirrorEntries.map { "\($0.registry)=\($0.mirror.host)" } }

    public init() {}

    /// Reads and parses the file at `path`.
    public static func load(_ path: String) throws(ConfigurationError) -> RegistriesConf {
        guard let bytes = ConfigFile.read(path) else {
            throw ConfigurationError(message: "cannot read '\(path)'")
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }

    private enum Table { case top, registry, mirror, other }

    private struct Entry {
        var location = ""
        var insecure = false
        var blocked = false
        var mirrorByDigestOnly = false
        var pull: RegistryMirror.Pull?
    }

    /// Parses the text of a registries.conf.
    public static func parse(_ text: String) throws(ConfigurationError) -> RegistriesConf {
        var registries: [(Entry, [Entry])] = []
        var table = Table.top
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let number = index + 1
            let line = OptionValue.trimmed(stripComment(lines[index]))
            index += 1
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                switch line.filter({ $0 != " " && $0 != "\t" }) {
                case "[[registry]]":
                    registries.append((Entry(), []))
                    table = .registry
                case "[[registry.mirror]]":
                    guard !registries.isEmpty else {
                        throw ConfigurationError(message: "line \(number): [[registry.mirror]] before any [[registry]]")
                    }
                    registries[registries.count - 1].1.append(Entry())
                    table = .mirror
                default:
                    table = .other
                }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(message: "line \(number): expected key = value, got '\(line)'")
            }
            var quotedKey = Substring(OptionValue.trimmed(line[..<equals]))
            while let first = quotedKey.first, first == "\"" || first == "'" { quotedKey.removeFirst() }
            while let last = quotedKey.last, last == "\"" || last == "'" { quotedKey.removeLast() }
            let key = String(quotedKey)
            var value = OptionValue.trimmed(line[line.index(after: equals)...])
            if value.hasPrefix("[") && (table == .registry || table == .mirror) {
                throw ConfigurationError(
                    message:
                        "line \(number): '\(key)' as an array is not supported here; write mirrors as [[registry.mirror]] tables"
                )
            }
            // An array value may span lines; ocirpc reads none, so skip it whole.
            if value.hasPrefix("[") {
                while !value.contains("]") && index < lines.count {
                    value += stripComment(lines[index])
                    index += 1
                }
                continue
            }
            guard table == .registry || table == .mirror else { continue }
            let isMirror = table == .mirror
            func update(_ entry: inout Entry) throws(ConfigurationError) {
                switch key {
                case "location":
                    entry.location = try string(value, line: number)
                case "prefix" where !isMirror:
                    let text = try string(value, line: number)
                    if entry.location.isEmpty { entry.location = text }
                case "insecure":
                    entry.insecure = try bool(value, line: number)
                case "blocked" where !isMirror:
                    entry.blocked = try bool(value, line: number)
                case "mirror-by-digest-only" where !isMirror:
                    entry.mirrorByDigestOnly = try bool(value, line: number)
                case "pull-from-mirror" where isMirror:
                    let text = try string(value, line: number)
                    guard let pull = RegistryMirror.Pull(setting: text) else {
                        throw ConfigurationError(
                            message:
                                "line \(number): pull-from-mirror must be all, digest-only or tag-only, got '\(text)'")
                    }
                    entry.pull = pull
                default:
                    throw ConfigurationError(
                        message:
                            "line \(number): '\(key)' is not supported in \(isMirror ? "[[registry.mirror]]" : "[[registry]]")"
                    )
                }
            }
            let last = registries.count - 1
            if table == .registry {
                try update(&registries[last].0)
            } else {
                try update(&registries[last].1[registries[last].1.count - 1])
            }
        }
        var conf = RegistriesConf()
        for (registry, mirrors) in registries {
            guard !registry.location.isEmpty else {
                throw ConfigurationError(message: "a [[registry]] without a location")
            }
            guard !registry.location.contains("/") else {
                throw ConfigurationError(
                    message: "'\(registry.location)' names a namespace; only whole registries are supported")
            }
            if registry.insecure { conf.insecureRegistries.append(registry.location) }
            if registry.blocked { conf.blockedRegistries.append(registry.location) }
            for mirror in mirrors {
                guard !mirror.location.isEmpty, !mirror.location.contains("/") else {
                    throw ConfigurationError(
                        message: "mirror '\(mirror.location)' of \(registry.location): expected host[:port]")
                }
                guard !mirror.location.contains("@") else {
                    throw ConfigurationError(
                        message: "mirror of \(registry.location): credentials do not belong in a location")
                }
                // containers-registries.conf(5): mirror-by-digest-only makes
                // every mirror digest-only and overrides pull-from-mirror.
                let pull: RegistryMirror.Pull = registry.mirrorByDigestOnly ? .digestOnly : (mirror.pull ?? .all)
                conf.mirrorEntries.append(
                    Mirror(registry: registry.location, mirror: RegistryMirror(host: mirror.location, pull: pull)))
                if mirror.insecure { conf.insecureRegistries.append(mirror.location) }
            }
        }
        return conf
    }

    /// The line without a `#` comment (outside quotes).
    private static func stripComment(_ line: String) -> String {
        var quote: Character?
        for (offset, character) in line.enumerated() {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" {
                return String(line.prefix(offset))
            }
        }
        return line
    }

    private static func string(_ value: String, line: Int) throws(ConfigurationError) -> String {
        guard value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first else {
            throw ConfigurationError(message: "line \(line): expected a quoted string, got '\(value)'")
        }
        return String(value.dropFirst().dropLast())
    }

    private static func bool(_ value: String, line: Int) throws(ConfigurationError) -> Bool {
        switch value {
        case "true": return true
        case "false": return false
        default: throw ConfigurationError(message: "line \(line): expected true or false, got '\(value)'")
        }
    }
}
