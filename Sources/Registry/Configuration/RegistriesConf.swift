import FoundationEssentials
import Glibc
import Options

/// The registries, namespaces and mirrors of a containers `registries.conf`
/// (version 2, the `[[registry]]` tables podman and buildah read):
///
///     [[registry]]
///     prefix = "docker.io"
///     location = "harbor.internal/dockerhub"
///     [[registry.mirror]]
///     location = "mirror.internal:5000/hub"
///     insecure = true
///
/// Read in `[[registry]]`: `prefix` and `location` (a registry, a
/// namespace in one, or for `prefix` a wildcard `*.domain`), `insecure`,
/// `blocked` and `mirror-by-digest-only`; in `[[registry.mirror]]`:
/// `location`, `insecure` and `pull-from-mirror`. Any other key in those
/// tables is refused rather than ignored (it may be a security setting),
/// and so is what the server cannot honour as written: a prefix naming a
/// tag or a digest, `insecure` for a namespace or a wildcard (plain HTTP
/// is chosen by host here), a wildcard with a port, a prefix given twice,
/// tables for one location that disagree on `blocked` or `insecure`,
/// `mirror-by-digest-only` with a mirror's `pull-from-mirror` (as
/// containers/image refuses them). Tables ocirpc has no use for
/// (`unqualified-search-registries`, `[aliases]`, ...) are skipped.
public struct RegistriesConf: Sendable, Equatable {
    /// One mirror of one registry (as `--mirror` gives it).
    public struct Mirror: Sendable, Equatable {
        public var registry: String
        public var mirror: RegistryMirror

        public init(registry: String, mirror: RegistryMirror) {
            self.registry = registry
            self.mirror = mirror
        }
    }

    /// A `[[registry]]` table: its rule, and the hosts it speaks plain
    /// HTTP to (its location's and its mirrors' marked `insecure`).
    struct RegistryTable: Sendable, Equatable {
        var rule: RegistryRule
        var insecure: [String] = []
    }

    var tables: [RegistryTable] = []

    /// The `[[registry]]` tables' rules, in file order.
    public var rules: [RegistryRule] {
        get { tables.map(\.rule) }
        set { tables = newValue.map { RegistryTable(rule: $0) } }
    }
    /// Registries and mirrors marked `insecure = true`.
    public var insecureRegistries: [String] { tables.flatMap(\.insecure) }

    public init() {}

    /// Reads and parses the file at `path`, then the drop-in files of the
    /// directory beside it, `path.d/*.conf` in the order of their names,
    /// as containers-registries.conf.d(5) reads them (podman's
    /// `/etc/containers/registries.conf.d`): a table of a later file
    /// replaces the one with the same prefix, and the others are added.
    /// A drop-in may block a registry, so one that cannot be read fails
    /// as the file itself does; a directory that is not there has none.
    public static func load(_ path: String) throws(ConfigurationError) -> RegistriesConf {
        var conf = try parse(file: path)
        for dropIn in try dropIns(of: path) {
            do throws(ConfigurationError) {
                conf.overlay(try parse(file: dropIn))
            } catch {
                throw ConfigurationError(message: "\(dropIn): \(error.message)")
            }
        }
        return conf
    }

    private static func parse(file path: String) throws(ConfigurationError) -> RegistriesConf {
        guard let bytes = ConfigFile.read(path) else {
            throw ConfigurationError(message: "cannot read '\(path)'")
        }
        return try parse(String(decoding: bytes, as: UTF8.self))
    }

    /// The files `path.d/*.conf`, by name; other entries (directories
    /// among them) are not read.
    static func dropIns(of path: String) throws(ConfigurationError) -> [String] {
        let directory = path + ".d"
        var info = stat()
        guard stat(directory, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw ConfigurationError(message: "cannot read '\(directory)': \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return [] }
        guard let listing = opendir(directory) else {
            throw ConfigurationError(message: "cannot read '\(directory)': \(String(cString: strerror(errno)))")
        }
        defer { closedir(listing) }
        var names: [String] = []
        while let entry = readdir(listing) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".conf") else { continue }
            var file = stat()
            guard stat(directory + "/" + name, &file) == 0, file.st_mode & S_IFMT == S_IFREG else { continue }
            names.append(name)
        }
        return names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { directory + "/" + $0 }
    }

    /// `later`'s tables over these: one with the same prefix replaces the
    /// table here, the others are added after.
    mutating func overlay(_ later: RegistriesConf) {
        for table in later.tables {
            let prefix = RegistryRoutes.canonical(table.rule.prefix)
            if let known = tables.firstIndex(where: { RegistryRoutes.canonical($0.rule.prefix) == prefix }) {
                tables[known] = table
            } else {
                tables.append(table)
            }
        }
    }

    private enum Table { case top, registry, mirror, other }

    private struct Entry {
        var prefix = ""
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
                case "[registries.search]", "[registries.insecure]", "[registries.block]":
                    // Version 1 holds security settings (a block list) too.
                    throw ConfigurationError(
                        message:
                            "line \(number): \(line) is the version 1 format, which is not read: write [[registry]] tables (blocked = true, insecure = true)"
                    )
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
                    entry.prefix = try string(value, line: number)
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
        var prefixes: Set<String> = []
        // containers/image refuses a file whose tables for one location
        // disagree on `blocked` or `insecure`: a prefix moved to a blocked
        // registry would be pulled from it.
        var settings: [String: (blocked: Bool, insecure: Bool)] = [:]
        for (registry, mirrors) in registries {
            // containers-registries.conf(5): a prefix defaults to the location.
            let prefix = (registry.prefix.isEmpty ? registry.location : registry.prefix).lowercased()
            guard !prefix.isEmpty else {
                throw ConfigurationError(message: "a [[registry]] without a prefix or a location")
            }
            let isWildcard = prefix.hasPrefix("*.")
            if isWildcard {
                // containers/image: `*.example.com`, with no port, namespace or digest.
                guard !prefix.contains(":") else {
                    throw ConfigurationError(message: "prefix '\(prefix)': a wildcard is *.domain, without a port")
                }
                try checkName(String(prefix.dropFirst(2)), "prefix '\(prefix)'", namespace: false)
            } else {
                try checkName(prefix, "prefix '\(prefix)'", namespace: true)
            }
            // A wildcard without a location pulls from the name itself.
            let location = registry.location.isEmpty ? prefix : registry.location
            if location != prefix || !isWildcard {
                try checkName(location, "location '\(location)' of \(prefix)", namespace: true)
            }
            guard prefixes.insert(RegistryRoutes.canonical(prefix)).inserted else {
                throw ConfigurationError(message: "the prefix '\(prefix)' is given twice")
            }
            var table = RegistryTable(rule: RegistryRule(prefix: prefix, location: location, blocked: registry.blocked))
            if registry.insecure {
                guard !location.hasPrefix("*."), !location.contains("/") else {
                    throw ConfigurationError(
                        message:
                            "\(prefix): insecure applies to whole registries here (host[:port]), not to a namespace or a wildcard"
                    )
                }
                table.insecure.append(location)
            }
            for mirror in mirrors {
                guard !mirror.location.isEmpty else {
                    throw ConfigurationError(message: "a mirror of \(prefix) without a location")
                }
                guard !mirror.location.contains("@") else {
                    throw ConfigurationError(message: "mirror of \(prefix): credentials do not belong in a location")
                }
                try checkName(mirror.location, "mirror '\(mirror.location)' of \(prefix)", namespace: true)
                // containers-registries.conf(5): mirror-by-digest-only makes
                // every mirror digest-only, and pull-from-mirror is allowed
                // only without it (containers/image refuses both).
                if registry.mirrorByDigestOnly, mirror.pull != nil {
                    throw ConfigurationError(
                        message:
                            "\(prefix): mirror-by-digest-only and a mirror's pull-from-mirror ('\(mirror.location)') cannot both be set"
                    )
                }
                let pull: RegistryMirror.Pull = registry.mirrorByDigestOnly ? .digestOnly : (mirror.pull ?? .all)
                table.rule.mirrors.append(RegistryMirror(location: mirror.location, pull: pull))
                if mirror.insecure {
                    guard !mirror.location.contains("/") else {
                        throw ConfigurationError(
                            message:
                                "mirror '\(mirror.location)' of \(prefix): insecure applies to whole registries here (host[:port]), not to a namespace"
                        )
                    }
                    table.insecure.append(mirror.location)
                }
            }
            let place = RegistryRoutes.canonical(location.lowercased())
            if let other = settings[place] {
                for (setting, agrees) in [
                    ("blocked", other.blocked == registry.blocked), ("insecure", other.insecure == registry.insecure),
                ] where !agrees {
                    throw ConfigurationError(
                        message: "registry '\(location)' is given twice with different '\(setting)' settings")
                }
            }
            settings[place] = (registry.blocked, registry.insecure)
            conf.tables.append(table)
        }
        return conf
    }

    /// Refuses `name` unless it is `host[:port]`, or with `namespace`
    /// `host[:port]/component/...`, each part as a reference's grammar
    /// has it (`ImageReference`): a tag, a digest or credentials are not
    /// a place.
    static func checkName(_ name: String, _ what: String, namespace: Bool) throws(ConfigurationError) {
        var parts = name.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map {
            ArraySlice($0)
        }
        let host = parts.removeFirst()
        guard ImageReference.isValidRegistry(host) else {
            throw ConfigurationError(message: "\(what): expected host[:port]\(namespace ? "[/namespace]" : "")")
        }
        guard namespace || parts.isEmpty else {
            throw ConfigurationError(message: "\(what): expected host[:port]")
        }
        for part in parts where !ImageReference.isValidPathComponent(part) {
            throw ConfigurationError(
                message:
                    "\(what): expected host[:port][/namespace], each part lower case letters and digits, with '.', '_' or '-' between them (a tag or a digest is not supported)"
            )
        }
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
