import DiskCaching
import JSON
import Registry

/// `server.stats` members of the methods, as the contract names them:
/// `caches` (per kind, and the tag cache), `cacheBytes`, `singleflightJoins`,
/// `registryRequests` (by kind), `retries`, `registryConnections`,
/// `downloadsHeld` (when downloads are counted) and `diskCache`.
enum Statistics {
    static func sections(
        _ service: ContentService, disk: DiskCache? = nil, downloads: DownloadBudget? = nil
    ) -> [JSONObject.Member] {
        var caches = JSONObject()
        for (kind, stats) in service.cache.statistics.sorted(by: { $0.key < $1.key }) {
            caches.append(
                kind,
                [
                    "hits": .integer(stats.hits), "misses": .integer(stats.misses), "entries": .integer(stats.entries),
                    "bytes": .integer(stats.bytes), "evictions": .integer(stats.evictions),
                ])
        }
        let tags = service.tags.statistics
        caches.append(
            "tag", ["hits": .integer(tags.hits), "misses": .integer(tags.misses), "entries": .integer(tags.entries)])
        var requests = JSONObject()
        var retries = 0
        var connections = 0
        for (kind, count) in service.source.requestCounts.sorted(by: { $0.key < $1.key }) {
            switch kind {
            case "retries": retries = count
            case "connections": connections = count
            default: requests.append(kind, .integer(count))
            }
        }
        var sections: [JSONObject.Member] = [
            .init(key: "caches", value: .object(caches)),
            .init(
                key: "cacheBytes",
                value: ["used": .integer(service.cache.bytes), "budget": .integer(service.cache.capacity)]),
            .init(key: "singleflightJoins", value: .integer(service.singleflightJoins)),
            .init(key: "registryRequests", value: .object(requests)),
            .init(key: "retries", value: .integer(retries)),
            .init(key: "registryConnections", value: .integer(connections)),
            .init(key: "diskCache", value: diskSection(disk)),
        ]
        if let downloads {
            sections.append(
                .init(
                    key: "downloadsHeld",
                    value: ["used": .integer(downloads.heldBytes), "budget": .integer(downloads.limit)]))
        }
        return sections
    }

    /// The disk cache's counts; `enabled` false (and zeros) without one.
    private static func diskSection(_ disk: DiskCache?) -> JSONValue {
        let counts = disk?.statistics ?? DiskCache.Statistics()
        var section: JSONObject = [
            "enabled": .bool(disk != nil), "hits": .integer(counts.hits), "misses": .integer(counts.misses),
            "writes": .integer(counts.writes), "corrupt": .integer(counts.corrupt),
            "evictions": .integer(counts.evictions), "bytes": .integer(counts.bytes),
            "failures": .integer(counts.failures),
        ]
        if let disk { section.append("directory", .string(disk.root.path)) }
        return .object(section)
    }
}
