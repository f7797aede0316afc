import Glibc
import Memory
import Options

/// The registry client's settings as users give them: TLS and plain-HTTP
/// registries, mirrors, `registries.conf`, timeouts and retries. Each is
/// parsed into its type here; `RegistryClient.Configuration(options:...)`
/// assembles the client's configuration from them.
public struct RegistryOptions: OptionSection, Equatable {
    /// Registries spoken to over plain HTTP besides loopback and private addresses.
    public var insecureRegistries: [String] = []
    /// Registries spoken to over HTTPS even on loopback or a private address.
    public var secureRegistries: [String] = []
    /// A PEM bundle of trusted CAs instead of the system's.
    public var caFile: String?
    /// Seconds of silence (or of under 1 KiB/s) before a registry request fails.
    public var timeout: Double = 30
    /// Seconds one registry request may take in all, retries included.
    public var requestTimeout: Double = 600
    /// Retries for connection errors, 429 and 502/503/504.
    public var retries: Int = 3
    /// What the downloads in flight may hold on disk together.
    /// 4 GiB, or a quarter of a container's memory limit when lower and
    /// `$TMPDIR` is held in memory.
    public var maxDownloadBytes = DownloadBudget.defaultLimit(
        temporary: DownloadDirectory.temporaryParent(), containerLimit: ContainerMemoryLimit.current)
    /// Mirrors from `--mirror`, in order, tried before their registry.
    public var mirrors: [RegistriesConf.Mirror] = []
    /// What `--registries-conf` says, used after the flags.
    public var registriesConf = RegistriesConf()
    /// Registries that may send requests into a local network though they
    /// are on the public internet.
    public var localNetworkRegistries: [String] = []

    public init() {}

    /// The options, as `--help` lists them.
    public static let options: [CommandOption] = [
        CommandOption(
            Self.self, flag: "--insecure-registry", variable: "OCIRPC_INSECURE_REGISTRY", valueName: "HOST[:PORT]",
            help: "use plain HTTP for this registry (repeatable; variable: comma-separated)",
            repeatable: true
        ) { o, v throws(ConfigurationError) in
            o.insecureRegistries.append(try OptionValue.host(v, "--insecure-registry"))
        },
        CommandOption(
            Self.self, flag: "--secure-registry", variable: "OCIRPC_SECURE_REGISTRY", valueName: "HOST[:PORT]",
            help: "use HTTPS for this registry even on loopback or a private address (repeatable)",
            repeatable: true
        ) { o, v throws(ConfigurationError) in
            o.secureRegistries.append(try OptionValue.host(v, "--secure-registry"))
        },
        CommandOption(
            Self.self, flag: "--ca-file", variable: "OCIRPC_CA_FILE", valueName: "PATH",
            help: "trust the CAs of this PEM bundle instead of the system's (default $SSL_CERT_FILE if set)"
        ) {
            o, v throws(ConfigurationError) in
            guard access(v, R_OK) == 0 else {
                throw ConfigurationError(message: "--ca-file: cannot read '\(v)'")
            }
            o.caFile = v
        },
        CommandOption(
            Self.self, flag: "--allow-local-redirects", variable: "OCIRPC_ALLOW_LOCAL_REDIRECTS",
            valueName: "HOST[:PORT]",
            help:
                "let this registry, though on the public internet, redirect into a local network or name a token realm there (repeatable; variable: comma-separated)",
            repeatable: true
        ) { o, v throws(ConfigurationError) in
            o.localNetworkRegistries.append(try OptionValue.host(v, "--allow-local-redirects"))
        },
        CommandOption(
            Self.self, flag: "--mirror", variable: "OCIRPC_MIRROR", valueName: "REGISTRY=MIRROR",
            help:
                "try MIRROR (host[:port], or host[:port]/namespace for one that holds REGISTRY's names under a namespace) before REGISTRY (repeatable; variable: comma-separated)",
            repeatable: true
        ) { o, v throws(ConfigurationError) in
            let parts = v.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ConfigurationError(message: "--mirror: expected REGISTRY=MIRROR, got '\(v)'")
            }
            // Credentials in a host would end up in logs and messages.
            guard !parts[1].contains("@") else {
                throw ConfigurationError(
                    message: "--mirror: the mirror must be host[:port][/namespace], without credentials")
            }
            try RegistriesConf.checkName(parts[0], "--mirror: the registry '\(parts[0])'", namespace: false)
            try RegistriesConf.checkName(parts[1], "--mirror: the mirror '\(parts[1])'", namespace: true)
            o.mirrors.append(RegistriesConf.Mirror(registry: parts[0], mirror: RegistryMirror(location: parts[1])))
        },
        CommandOption(
            Self.self, flag: "--registries-conf", variable: "OCIRPC_REGISTRIES_CONF", valueName: "PATH",
            help: "mirrors, moved namespaces, blocked and insecure registries from a containers registries.conf"
        ) {
            o, v throws(ConfigurationError) in
            do throws(ConfigurationError) {
                o.registriesConf = try RegistriesConf.load(v)
            } catch {
                throw ConfigurationError(message: "--registries-conf: \(v): \(error.message)")
            }
        },
        CommandOption(
            Self.self, flag: "--timeout", variable: "OCIRPC_TIMEOUT", valueName: "DURATION",
            help: "seconds of silence (or under 1 KiB/s) before a registry request fails (default 30s)"
        ) {
            o, v throws(ConfigurationError) in
            o.timeout = try OptionValue.duration(v, "--timeout", allowZero: false, max: 86_400)
        },
        CommandOption(
            Self.self, flag: "--request-timeout", variable: "OCIRPC_REQUEST_TIMEOUT", valueName: "DURATION",
            help: "total time for one registry request, retries included (default 10m)"
        ) {
            o, v throws(ConfigurationError) in
            o.requestTimeout = try OptionValue.duration(v, "--request-timeout", allowZero: false, max: 86_400)
        },
        CommandOption(
            Self.self, flag: "--retries", variable: "OCIRPC_RETRIES", valueName: "N",
            help:
                "retries on connection errors, 429, 502/503/504 (default 3); a download broken off resumes where it stopped"
        ) { o, v throws(ConfigurationError) in
            guard let n = Int(v), n >= 0, n <= 100 else {
                throw ConfigurationError(message: "--retries: expected an integer from 0 to 100, got '\(v)'")
            }
            o.retries = n
        },
        CommandOption(
            Self.self, flag: "--max-download-bytes", variable: "OCIRPC_MAX_DOWNLOAD_BYTES", valueName: "SIZE",
            help:
                "what the blob downloads in flight may hold on disk together (default 4GiB, or a quarter of a container's memory limit when $TMPDIR is a tmpfs); past it a call fails with download_limit, retryable"
        ) { o, v throws(ConfigurationError) in
            o.maxDownloadBytes = try OptionValue.byteSize(v, "--max-download-bytes", allowZero: false, max: 1 << 44)
        },
    ]
}

extension RegistryClient.Configuration {
    /// The client's configuration from what users set: the options, the
    /// environment (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the credential files)
    /// and how many connections to keep per host.
    public init(options: RegistryOptions, environment: [String: String], maxConnectionsPerHost: Int) {
        self.init()
        scheme = RegistryScheme(
            insecureRegistries: options.insecureRegistries + options.registriesConf.insecureRegistries,
            secureRegistries: options.secureRegistries)
        // Like curl and OpenSSL tools: SSL_CERT_FILE / SSL_CERT_DIR when no --ca-file.
        func variable(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        transport.caFile = options.caFile ?? variable("SSL_CERT_FILE")
        transport.caDirectory = options.caFile == nil ? variable("SSL_CERT_DIR") : nil
        transport.timeout = options.timeout
        transport.requestTimeout = options.requestTimeout
        transport.retries = options.retries
        transport.maxConnectionsPerHost = maxConnectionsPerHost
        credentials = CredentialStore(environment: environment)
        routes = RegistryRoutes(rules: Self.rules(mirrors: options.mirrors, conf: options.registriesConf))
        localNetworkRegistries = Set(options.localNetworkRegistries.map(RegistryClient.canonicalRegistry))
        downloads = DownloadBudget(limit: options.maxDownloadBytes)
    }

    /// The file's rules, with the flags' mirrors (`--mirror`, each for a
    /// whole registry) first among the mirrors of the registry's own rule,
    /// or in a rule of their own.
    static func rules(mirrors: [RegistriesConf.Mirror], conf: RegistriesConf) -> [RegistryRule] {
        var rules = conf.rules
        var flagged: [(prefix: String, mirrors: [RegistryMirror])] = []
        for entry in mirrors {
            let prefix = RegistryRoutes.canonical(entry.registry)
            if let known = flagged.firstIndex(where: { $0.prefix == prefix }) {
                flagged[known].mirrors.append(entry.mirror)
            } else {
                flagged.append((prefix, [entry.mirror]))
            }
        }
        for (prefix, mirrors) in flagged {
            if let known = rules.firstIndex(where: { RegistryRoutes.canonical($0.prefix) == prefix }) {
                rules[known].mirrors.insert(contentsOf: mirrors, at: 0)
            } else {
                rules.append(RegistryRule(prefix: prefix, mirrors: mirrors))
            }
        }
        return rules
    }
}
