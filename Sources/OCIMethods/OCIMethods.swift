import DiskCaching
import JSON
import Logging
import Memory
import Options
import RPCDispatch
import Registry
import ServerCore

/// The ten `ec.oci.*` methods, served from one `ContentService`.
public enum OCIMethods {
    /// The module as the command sees it: the registry client's options
    /// and the methods', and the extension built from them.
    public static let module = ServerModule(
        options: RegistryOptions.options + MethodOptions.options,
        helpNotes: [
            "Credentials: $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/<uid>/auth.json),",
            "$XDG_CONFIG_HOME/containers/auth.json (~/.config/...), $DOCKER_CONFIG/config.json or",
            "~/.docker/config.json, ~/.dockercfg, including credHelpers, credsStore and namespaced",
            "entries (quay.io/org); or $REGISTRY_AUTH_FILE alone.",
        ]
    ) { parsed, logger, memory in
        makeExtension(
            registry: parsed[RegistryOptions.self], methods: parsed[MethodOptions.self],
            environment: parsed.environment, logger: logger, memory: memory)
    }

    /// The server extension: the methods, their `server.stats` sections
    /// and their caches, over one registry client. Manifests and other
    /// bodies fetched into memory are taken from `memory` while calls hold
    /// them (nil: not counted).
    public static func makeExtension(
        registry: RegistryOptions = RegistryOptions(), methods options: MethodOptions = MethodOptions(),
        environment: [String: String], logger: Logger, memory: MemoryBudget? = nil
    ) -> ServerExtension {
        var configuration = RegistryClient.Configuration(
            options: registry, environment: environment, maxConnectionsPerHost: max(8, options.maxConcurrency))
        configuration.memory = memory
        let client = RegistryClient(configuration: configuration, logger: logger)
        // The disk cache, when there is one and it can be used, sits
        // between the in-memory caches and the registry.
        var source: any ContentSource = client
        let disk = options.cacheDirectory.resolved(environment).flatMap {
            DiskCache.open(directory: $0, budget: options.diskCacheBytes, logger: logger)
        }
        if let disk {
            source = DiskCachedSource(upstream: client, disk: disk, tagTTL: options.tagTTL, memory: memory)
        }
        let service = ContentService(
            source: source, cacheBytes: options.cacheBytes, tagTTL: options.tagTTL,
            defaultPlatform: options.platform,
            maxDecompressedBytes: options.maxDecompressedBytes, derivedStore: disk, memory: memory)
        let methods = MethodTable(service: service, maxConcurrency: options.maxConcurrency)
        return ServerExtension(
            methods: methods.specs,
            capabilities: [.init(key: "maxConcurrency", value: .integer(options.maxConcurrency))],
            stats: { Statistics.sections(service, disk: disk, downloads: client.downloads) },
            clearCaches: { service.clear() })
    }
}
