import Reasons

/// One `[[registry]]` table of a registries.conf (or a `--mirror` flag's
/// registry): the references under `prefix` are pulled from `location`,
/// after its mirrors, or refused when `blocked`.
public struct RegistryRule: Sendable, Equatable {
    /// `host[:port]`, `host[:port]/namespace...`, or `*.domain` (any host
    /// under the domain): the logical names the rule is for.
    public var prefix: String
    /// Where the names under `prefix` are: the same forms but a wildcard;
    /// `prefix` itself unless the rule remaps them.
    public var location: String
    /// Every request for a name under `prefix` is refused.
    public var blocked: Bool
    /// Tried in order before `location`, each where it may serve.
    public var mirrors: [RegistryMirror]

    public init(prefix: String, location: String? = nil, blocked: Bool = false, mirrors: [RegistryMirror] = []) {
        self.prefix = prefix
        self.location = location ?? prefix
        self.blocked = blocked
        self.mirrors = mirrors
    }

    /// Whether `prefix` is a wildcard (`*.domain`).
    public var isWildcard: Bool { prefix.hasPrefix("*.") }
}

/// Where a reference is pulled from, as containers-registries.conf(5)
/// chooses: the rule whose `prefix` is the longest match of the name
/// (`registry/repository`, at a `/` or its end), its mirrors in order, then
/// its `location`, each with the rest of the name after the prefix. A
/// wildcard prefix (`*.example.com`) matches any host under the domain,
/// whatever its port, and moves nothing. A name no rule matches is pulled
/// from where it names.
public struct RegistryRoutes: Sendable {
    /// The rules, prefixes with Docker Hub's canonical name.
    public let rules: [RegistryRule]

    public init(rules: [RegistryRule] = []) {
        self.rules = rules.map { rule in
            var rule = rule
            rule.prefix = Self.canonical(rule.prefix)
            rule.location = Self.canonical(rule.location)
            rule.mirrors = rule.mirrors.map { RegistryMirror(location: Self.canonical($0.location), pull: $0.pull) }
            return rule
        }
    }

    /// Where to ask for `reference`: its mirrors that may serve it, in
    /// order, then its location.
    public struct Route: Sendable {
        public let mirrors: [ImageReference]
        public let primary: ImageReference
    }

    /// The route of `reference`; `blocked` when its rule blocks it, and
    /// `invalid_reference` when its rule moves it to no repository (a
    /// prefix naming a whole repository, moved to a bare host).
    public func route(_ reference: ImageReference) throws(RegistryError) -> Route {
        guard !rules.isEmpty, let rule = rule(for: reference) else { return Route(mirrors: [], primary: reference) }
        guard !rule.blocked else { throw Self.blocked(reference) }
        guard !rule.isWildcard else { return Route(mirrors: [], primary: reference) }
        let rest = String("\(reference.registry)/\(reference.repository)".dropFirst(rule.prefix.count))
        func moved(to location: String) throws(RegistryError) -> ImageReference {
            let name = location + rest
            guard let slash = name.firstIndex(of: "/"), name.index(after: slash) < name.endIndex else {
                throw RegistryError(
                    .invalidReference, reason: .invalidReference,
                    message:
                        "the registries configuration moves \(reference.registry)/\(reference.repository) to \(location), which names no repository"
                )
            }
            return ImageReference(
                registry: String(name[..<slash]), repository: String(name[name.index(after: slash)...]),
                tag: reference.tag, digest: reference.digest)
        }
        var mirrors: [ImageReference] = []
        for mirror in rule.mirrors where mirror.serves(reference) { mirrors.append(try moved(to: mirror.location)) }
        return Route(mirrors: mirrors, primary: try moved(to: rule.location))
    }

    /// Throws `blocked` when the rule for `reference` blocks it.
    public func refuseIfBlocked(_ reference: ImageReference) throws(RegistryError) {
        guard !rules.isEmpty, rule(for: reference)?.blocked == true else { return }
        throw Self.blocked(reference)
    }

    private static func blocked(_ reference: ImageReference) -> RegistryError {
        RegistryError(
            .accessDenied, reason: .blocked,
            message: "\(reference.registry)/\(reference.repository) is blocked by the registries configuration")
    }

    /// The rule with the longest prefix matching `reference`; of a
    /// wildcard and a name matching as long, the name.
    func rule(for reference: ImageReference) -> RegistryRule? {
        // Host names are compared without regard to case; repositories
        // are lower case.
        let name = "\(reference.registry)/\(reference.repository)".lowercased()
        let host = RegistryScheme.host(of: Array(reference.registry.utf8))
        var best: (rule: RegistryRule, length: Int, wildcard: Bool)?
        for rule in rules {
            let length: Int
            if rule.isWildcard {
                let domain = Array(rule.prefix.dropFirst().utf8)
                guard host.count > domain.count, host.lowercased().hasSuffix(domain) else { continue }
                length = reference.registry.utf8.count
            } else {
                guard name == rule.prefix || name.hasPrefix(rule.prefix + "/") else { continue }
                length = rule.prefix.utf8.count
            }
            if let best, best.length > length || (best.length == length && !best.wildcard) { continue }
            best = (rule, length, rule.isWildcard)
        }
        return best?.rule
    }

    /// `name` with Docker Hub's registry written as references write it.
    static func canonical(_ name: String) -> String {
        let slash = name.firstIndex(of: "/") ?? name.endIndex
        return RegistryClient.canonicalRegistry(String(name[..<slash]).lowercased()) + name[slash...]
    }
}

extension ArraySlice<UInt8> {
    /// ASCII letters lowered.
    fileprivate func lowercased() -> [UInt8] {
        map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
    }
}

extension Array<UInt8> {
    fileprivate func hasSuffix(_ suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
