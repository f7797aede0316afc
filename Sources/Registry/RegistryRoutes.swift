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

/// Where a reference is pulled from, as containers/image (podman's
/// library) chooses under containers-registries.conf(5).
///
/// - The rule is the one whose `prefix` matches the name
///   (`registry/repository`) and is the longest as written; of two as
///   long, the first in byte order (containers/image sorts its tables, so
///   `*.example.com` comes before `a.example.com`).
/// - A prefix matches at a `/` or the name's end, and a bare host also
///   matches that host on any port (`example.com` matches
///   `example.com:5000/app`, as containers/image matches it).
/// - A wildcard (`*.example.com`) matches any host under the domain,
///   whatever its port or case; Docker Hub's names are matched as
///   `docker.io`.
/// - The rule's mirrors are tried in order, then its `location`, each with
///   the rest of the name after the prefix (after the host, for a
///   wildcard). A wildcard without a location pulls from the name itself.
/// - Where containers/image would move a name with a port to another host
///   keeping that port (its own code calls that match unintended), the
///   reference is refused; a rule that moves nothing pulls it as named.
///
/// A name no rule matches is pulled from where it names.
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
    /// prefix naming a whole repository, moved to a bare host) or moves a
    /// name with a port to another host.
    public func route(_ reference: ImageReference) throws(RegistryError) -> Route {
        guard !rules.isEmpty, let match = match(for: reference) else { return Route(mirrors: [], primary: reference) }
        let rule = match.rule
        guard !rule.blocked else { throw Self.blocked(reference) }
        let movesToLocation = rule.location != rule.prefix
        guard movesToLocation || !rule.mirrors.isEmpty else { return Route(mirrors: [], primary: reference) }
        guard !match.rest.hasPrefix(":") else {
            throw RegistryError(
                .invalidReference, reason: .invalidReference,
                message:
                    "the registries configuration's prefix \(rule.prefix) would move \(reference.registry)/\(reference.repository) to another host keeping its port; give the host with its port a rule of its own"
            )
        }
        func moved(to location: String) throws(RegistryError) -> ImageReference {
            let name = location + match.rest
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
        return Route(mirrors: mirrors, primary: movesToLocation ? try moved(to: rule.location) : reference)
    }

    /// Throws what `route` throws for `reference`: `blocked`, or a name
    /// its rule cannot move.
    public func refuseIfUnroutable(_ reference: ImageReference) throws(RegistryError) {
        guard !rules.isEmpty else { return }
        _ = try route(reference)
    }

    private static func blocked(_ reference: ImageReference) -> RegistryError {
        RegistryError(
            .accessDenied, reason: .blocked,
            message: "\(reference.registry)/\(reference.repository) is blocked by the registries configuration")
    }

    /// The rule for `reference` (the longest prefix that matches, the
    /// first in byte order of two as long), and the rest of the name after
    /// what it matched: empty, or from a `/` or a port's `:`.
    func match(for reference: ImageReference) -> (rule: RegistryRule, rest: Substring)? {
        // Host names are compared without regard to case; repositories
        // are lower case.
        let name = reference.name.lowercased()
        let registry = reference.registry
        let port = registry.utf8.count - RegistryScheme.host(of: Array(registry.utf8)).count
        // containers/image names Docker Hub `docker.io`.
        let host = Array(
            (registry == ImageReference.dockerHub ? "docker.io" : String(registry.dropLast(port))).lowercased().utf8)
        var best: (rule: RegistryRule, rest: Substring)?
        for rule in rules {
            let rest: Substring
            if rule.isWildcard {
                let domain = Array(rule.prefix.dropFirst().utf8)
                guard host.count > domain.count, host.hasSuffix(domain) else { continue }
                rest = name.dropFirst(registry.count - port)
            } else {
                guard name.hasPrefix(rule.prefix) else { continue }
                rest = name.dropFirst(rule.prefix.count)
                guard rest.isEmpty || rest.hasPrefix("/") || (rest.hasPrefix(":") && port > 0) else { continue }
            }
            if let best,
                best.rule.prefix.utf8.count > rule.prefix.utf8.count
                    || (best.rule.prefix.utf8.count == rule.prefix.utf8.count && best.rule.prefix <= rule.prefix)
            {
                continue
            }
            best = (rule, rest)
        }
        return best
    }

    /// `name` with Docker Hub's registry written as references write it.
    static func canonical(_ name: String) -> String {
        let slash = name.firstIndex(of: "/") ?? name.endIndex
        return RegistryClient.canonicalRegistry(String(name[..<slash]).lowercased()) + name[slash...]
    }
}

extension Array<UInt8> {
    fileprivate func hasSuffix(_ suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
