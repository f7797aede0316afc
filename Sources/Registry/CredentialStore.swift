import FoundationEssentials
import Glibc
import JSON
import Locking

/// A username and secret for one registry. Never logged or echoed.
public struct Credentials: Sendable, Equatable {
    public let username: String
    public let secret: String
    /// An identity (refresh) token from `docker login`, used with the token
    /// server's OAuth2 flow instead of the password.
    public let identityToken: String?
    /// A bearer token for the registry itself (`registrytoken` in docker's
    /// config), sent as it is when the registry challenges: no token server
    /// is asked, as go-containerregistry's keychain does.
    public let registryToken: String?

    public init(username: String, secret: String, identityToken: String? = nil, registryToken: String? = nil) {
        self.username = username
        self.secret = secret
        self.identityToken = identityToken
        self.registryToken = registryToken
    }
}

/// Registry credentials from the files docker and podman write, in
/// podman's order (containers-auth.json(5)): `$REGISTRY_AUTH_FILE` alone
/// when it is set, else `$XDG_RUNTIME_DIR/containers/auth.json`
/// (`/run/containers/<uid>/auth.json` without one),
/// `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`),
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, and the
/// legacy `~/.dockercfg` — `auths` (`auth`, `identitytoken`, `registrytoken`),
/// `credHelpers` and `credsStore` (through `docker-credential-<name> get`).
/// The first file that knows a registry wins.
/// In a file, a registry's helper comes first, then `auths` entries for the
/// repository's namespaces, most specific first (`quay.io/org/app`,
/// `quay.io/org`), as containers-auth.json(5) reads them, then the
/// registry's own entry. A helper's answer is reused for
/// `helperAnswerLifetime` seconds, so a helper runs once per registry, not
/// once per request.
public final class CredentialStore: Sendable {
    private struct AuthFile: Sendable {
        var auths: [String: Credentials] = [:]
        var helpers: [String: String] = [:]
        var store: String?
        /// Whether `auths` keys may name a repository's namespace.
        var namespaced = true
    }

    private let files: [AuthFile]
    /// Where helpers are looked for: the environment's `PATH`.
    private let searchPath: String
    private let helperTimeout: Double
    private let helperAnswerLifetime: Double
    private let helperFailureLifetime: Double
    private let helperAnswers = Locked([String: (Credentials?, ContinuousClock.Instant)]())

    /// Reads the files named by `environment` (defaults to the process's).
    /// A helper that has not answered in `helperTimeout` seconds is killed.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        helperTimeout: Double = 20, helperAnswerLifetime: Double = 300, helperFailureLifetime: Double = 30
    ) {
        self.helperFailureLifetime = helperFailureLifetime
        searchPath = environment["PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/local/bin:/usr/bin:/bin"
        self.helperTimeout = helperTimeout
        self.helperAnswerLifetime = helperAnswerLifetime
        files = Self.authFiles(environment: environment, uid: getuid()).compactMap(Self.load)
    }

    /// The files read, in order, and whether each is in the legacy format
    /// (`~/.dockercfg`: the document is what `auths` holds elsewhere). A
    /// file named by `$REGISTRY_AUTH_FILE` is read alone, as podman and
    /// skopeo read the file their `--authfile` names.
    static func authFiles(environment: [String: String], uid: uid_t) -> [(path: String, legacy: Bool)] {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let file = value("REGISTRY_AUTH_FILE") { return [(file, false)] }
        let home = value("HOME")
        var paths = [
            value("XDG_RUNTIME_DIR").map { $0 + "/containers/auth.json" } ?? "/run/containers/\(uid)/auth.json"
        ]
        if let config = value("XDG_CONFIG_HOME") ?? home.map({ $0 + "/.config" }) {
            paths.append(config + "/containers/auth.json")
        }
        if let docker = value("DOCKER_CONFIG") ?? home.map({ $0 + "/.docker" }) {
            paths.append(docker + "/config.json")
        }
        var files = paths.map { (path: $0, legacy: false) }
        if let home { files.append((home + "/.dockercfg", true)) }
        return files
    }

    /// Credentials for `repository` (a path, e.g. `org/app`; empty for none)
    /// on `registry` (`host[:port]`), or nil for anonymous.
    public func credentials(for registry: String, repository: String = "") async -> Credentials? {
        let keys = Self.lookupKeys(registry)
        let namespaces = Self.namespaceKeys(registry, repository: repository)
        for file in files {
            if let key = keys.first(where: { file.helpers[$0] != nil }), let helper = file.helpers[key] {
                return await ask(helper, serverURL: key)
            }
            for key in (file.namespaced ? namespaces : []) + keys {
                if let found = file.auths[key] { return found }
            }
            // `docker login` keeps Docker Hub in a store under its v1 URL.
            let storeKey = registry == ImageReference.dockerHub ? "https://index.docker.io/v1/" : registry
            if let store = file.store, let found = await ask(store, serverURL: storeKey) { return found }
        }
        return nil
    }

    /// A helper's answer, from the last few minutes or asked now. A failed
    /// lookup is kept briefly too (`helperFailureLifetime`), so a broken or
    /// slow helper is not run on every request.
    private func ask(_ helper: String, serverURL: String) async -> Credentials? {
        let key = helper + " " + serverURL
        if let (answer, expires) = helperAnswers.withLock({ $0[key] }), expires > .now { return answer }
        let answer = await CredentialHelper(name: helper, searchPath: searchPath, timeout: helperTimeout).get(serverURL)
        let lifetime = answer == nil ? helperFailureLifetime : helperAnswerLifetime
        helperAnswers.withLock { answers in
            if answers.count >= 1024 { answers.removeAll() }
            answers[key] = (answer, .now + .milliseconds(Int(lifetime * 1000)))
        }
        return answer
    }

    /// The `auths` keys that name `repository`'s namespaces on `registry`,
    /// most specific first: `r.example/org/app`, `r.example/org`. Split at
    /// its slashes only, so `r.example/org` never names `org2/app`. Docker
    /// Hub's are spelt `docker.io/...`, as podman writes them, or
    /// `index.docker.io/...`.
    static func namespaceKeys(_ registry: String, repository: String) -> [String] {
        guard !repository.isEmpty else { return [] }
        let hosts = registry == ImageReference.dockerHub ? ["docker.io", registry] : [registry]
        let names = repository.split(separator: "/", omittingEmptySubsequences: false)
        var keys: [String] = []
        for depth in stride(from: names.count, to: 0, by: -1) {
            let path = names[..<depth].joined(separator: "/")
            for host in hosts { keys.append(host + "/" + path) }
        }
        return keys
    }

    /// The spellings a config may use for a registry.
    static func lookupKeys(_ registry: String) -> [String] {
        var keys = [
            registry, "https://\(registry)", "http://\(registry)", "https://\(registry)/v1/", "https://\(registry)/v2/",
        ]
        if registry == ImageReference.dockerHub {
            keys += ["docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"]
        }
        return keys
    }

    private static func load(_ file: (path: String, legacy: Bool)) -> AuthFile? {
        guard let bytes = ConfigFile.read(file.path), let document = try? JSONParser.parse(bytes)
        else { return nil }
        let legacy = file.legacy
        let auths = legacy ? document : document["auths"]
        var file = AuthFile()
        for member in auths?.objectValue?.members ?? [] {
            let entry = member.value
            var username = entry["username"]?.stringValue ?? ""
            var secret = entry["password"]?.stringValue ?? ""
            if let auth = entry["auth"]?.stringValue, let decoded = Data(base64Encoded: auth),
                let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            {
                username = String(text[..<colon])
                secret = String(text[text.index(after: colon)...])
            }
            let identityToken = entry["identitytoken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            let registryToken = entry["registrytoken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            guard !username.isEmpty || identityToken != nil || registryToken != nil else { continue }
            file.auths[member.key] = Credentials(
                username: username, secret: secret, identityToken: identityToken, registryToken: registryToken)
        }
        // The legacy format is the entries alone: no helpers, and keys name
        // registries only.
        guard !legacy else {
            file.namespaced = false
            return file
        }
        for member in document["credHelpers"]?.objectValue?.members ?? [] {
            if let helper = member.value.stringValue { file.helpers[member.key] = helper }
        }
        file.store = document["credsStore"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return file
    }
}
