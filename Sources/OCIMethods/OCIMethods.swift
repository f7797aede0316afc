import JSON
import Logging
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
            "Credentials: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or ~/.docker/config.json,",
            "$XDG_RUNTIME_DIR/containers/auth.json, including credHelpers and credsStore.",
        ]
    ) { parsed, logger in
        makeExtension(registry: parsed[RegistryOptions.self], methods: parsed[MethodOptions.self],
                      environment: parsed.environment, logger: logger)
    }

    /// The server extension: the methods, their `server.stats` sections
    /// and their caches, over one registry client.
    public static func makeExtension(
        registry: RegistryOptions = RegistryOptions(), methods options: MethodOptions = MethodOptions(),
        environment: [String: String], logger: Logger
    ) -> ServerExtension {
        let client = RegistryClient(
            configuration: RegistryClient.Configuration(
                options: registry, environment: environment,
                maxConnectionsPerHost: max(8, options.maxConcurrency)),
            logger: logger)
        let service = ContentService(source: client, cacheBytes: options.cacheBytes, tagTTL: options.tagTTL,
                                     defaultPlatform: options.platform,
                                     maxDecompressedBytes: options.maxDecompressedBytes)
        let methods = MethodTable(service: service, maxConcurrency: options.maxConcurrency)
        return ServerExtension(
            methods: methods.specs,
            capabilities: [.init(key: "maxConcurrency", value: .integer(options.maxConcurrency))],
            stats: { Statistics.sections(service) },
            clearCaches: { service.clear() })
    }
}

/// `server.stats` members of the methods, as the contract names them:
/// `caches` (per kind, and the tag cache), `cacheBytes`, `singleflightJoins`,
/// `registryRequests` (by kind) and `retries`.
enum Statistics {
    static func sections(_ service: ContentService) -> [JSONObject.Member] {
        var caches = JSONObject()
        for (kind, stats) in service.cache.statistics.sorted(by: { $0.key < $1.key }) {
            caches.append(kind, [
                "hits": .integer(stats.hits), "misses": .integer(stats.misses), "entries": .integer(stats.entries),
                "bytes": .integer(stats.bytes), "evictions": .integer(stats.evictions),
            ])
        }
        let tags = service.tags.statistics
        caches.append("tag", ["hits": .integer(tags.hits), "misses": .integer(tags.misses), "entries": .integer(tags.entries)])
        var requests = JSONObject()
        var retries = 0
        for (kind, count) in service.source.requestCounts.sorted(by: { $0.key < $1.key }) {
            if kind == "retries" { retries = count } else { requests.append(kind, .integer(count)) }
        }
        return [
            .init(key: "caches", value: .object(caches)),
            .init(key: "cacheBytes", value: ["used": .integer(service.cache.bytes), "budget": .integer(service.cache.capacity)]),
            .init(key: "singleflightJoins", value: .integer(service.singleflightJoins)),
            .init(key: "registryRequests", value: .object(requests)),
            .init(key: "retries", value: .integer(retries)),
        ]
    }
}
