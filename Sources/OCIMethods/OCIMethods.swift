import Foundation
import JSON
import Logging
import RPCDispatch
import Registry
import ServerCore

/// The ten `ec.oci.*` methods, served from one `ContentService`.
public enum OCIMethods {
    /// The server extension for `configuration`: the methods, their
    /// `server.stats` sections and their caches.
    public static func makeExtension(configuration: ServerConfiguration, logger: Logger,
                                     environment: [String: String] = ProcessInfo.processInfo.environment)
        -> ServerExtension
    {
        var settings = RegistryClient.Configuration()
        settings.scheme = RegistryScheme(insecureRegistries: configuration.insecureRegistries
                                            + configuration.registriesConf.insecureRegistries,
                                         secureRegistries: configuration.secureRegistries)
        // Like curl and OpenSSL tools: SSL_CERT_FILE / SSL_CERT_DIR when no --ca-file.
        settings.transport.caFile = configuration.caFile ?? environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        settings.transport.caDirectory = configuration.caFile == nil
            ? environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 } : nil
        settings.transport.timeout = configuration.timeout
        settings.transport.requestTimeout = configuration.requestTimeout
        settings.transport.retries = configuration.retries
        settings.transport.maxConnectionsPerHost = max(8, configuration.maxConcurrency)
        settings.credentials = CredentialStore(environment: environment)
        settings.mirrors = RegistryClient.mirrors(from: configuration.mirrors)
        for entry in configuration.registriesConf.mirrorEntries {
            let pull: RegistryMirror.Pull
            switch entry.pull {
            case .all: pull = .all
            case .digestOnly: pull = .digestOnly
            case .tagOnly: pull = .tagOnly
            }
            settings.mirrors[RegistryClient.canonicalRegistry(entry.registry), default: []]
                .append(RegistryMirror(host: entry.location, pull: pull))
        }
        settings.blocked = Set(configuration.registriesConf.blockedRegistries.map(RegistryClient.canonicalRegistry))
        let client = RegistryClient(configuration: settings, logger: logger)
        // The configuration parser has validated the platform already.
        let platform = (try? Platform(configuration.platform)) ?? .linuxAMD64
        let service = ContentService(source: client, cacheBytes: configuration.cacheBytes,
                                     tagTTL: configuration.tagTTL, defaultPlatform: platform,
                                     maxDecompressedBytes: configuration.maxDecompressedBytes)
        let methods = MethodTable(service: service, maxConcurrency: configuration.maxConcurrency)
        return ServerExtension(
            methods: methods.specs,
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
