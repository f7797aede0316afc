import Foundation

/// The mirrors and insecure registries of a containers `registries.conf`
/// (version 2, the `[[registry]]` tables podman and buildah read):
///
///     [[registry]]
///     location = "docker.io"
///     [[registry.mirror]]
///     location = "mirror.internal:5000"
///     insecure = true
///
/// Only what ocirpc acts on is read: each registry's `location` (or
/// `prefix`) and `insecure`, and its mirrors' `location` and `insecure`.
/// Other keys and tables (`unqualified-search-registries`, `[aliases]`, ...)
/// are skipped. Entries for a namespace (`docker.io/library`) are refused:
/// mirrors apply to whole registries here.
public struct RegistriesConf: Sendable, Equatable {
    /// `REGISTRY=MIRROR`, in file order (as `--mirror` takes them).
    public var mirrors: [String] = []
    /// Registries and mirrors marked `insecure = true`.
    public var insecureRegistries: [String] = []

    public init() {}

    /// Reads and parses the file at `path`.
    public static func load(_ path: String) throws(ConfigurationError) -> RegistriesConf {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(message: "cannot read '\(path)'")
        }
        return try parse(String(decoding: data, as: UTF8.self))
    }

    private enum Table { case top, registry, mirror, other }

    private struct Entry {
        var location = ""
        var insecure = false
    }

    /// Parses the text of a registries.conf.
    public static func parse(_ text: String) throws(ConfigurationError) -> RegistriesConf {
        var registries: [(Entry, [Entry])] = []
        var table = Table.top
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let number = index + 1
            let line = stripComment(lines[index]).trimmingWhitespace
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
            let key = line[..<equals].trimmingWhitespace.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            var value = line[line.index(after: equals)...].trimmingWhitespace
            // An array value may span lines; ocirpc reads none, so skip it whole.
            if value.hasPrefix("[") {
                while !value.contains("]") && index < lines.count {
                    value += stripComment(lines[index])
                    index += 1
                }
                continue
            }
            guard table == .registry || table == .mirror else { continue }
            func update(_ entry: inout Entry) throws(ConfigurationError) {
                switch key {
                case "location", "prefix":
                    let text = try string(value, line: number)
                    if key == "location" || entry.location.isEmpty { entry.location = text }
                case "insecure":
                    entry.insecure = try bool(value, line: number)
                default:
                    break
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
                throw ConfigurationError(message: "'\(registry.location)' names a namespace; only whole registries are supported")
            }
            if registry.insecure { conf.insecureRegistries.append(registry.location) }
            for mirror in mirrors {
                guard !mirror.location.isEmpty, !mirror.location.contains("/") else {
                    throw ConfigurationError(message: "mirror '\(mirror.location)' of \(registry.location): expected host[:port]")
                }
                conf.mirrors.append("\(registry.location)=\(mirror.location)")
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
