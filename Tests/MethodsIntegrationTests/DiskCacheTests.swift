import DiskCaching
import Foundation
import Glibc
import JSON
import Logging
import Testing
import Registry
import TestFixtures

/// The disk cache through the binary: processes in turn over one cache
/// directory, against a real registry.
@Suite(.serialized, .needsDockerRegistry) struct DiskCacheTests {
    /// A fresh cache directory, removed at the end.
    private static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-disk-\(UUID().uuidString)").path
    }

    /// Asks a new server process (over `cache`) for `calls`, and returns the
    /// answers and its `server.stats`.
    private static func run(
        _ calls: [(String, JSONValue)], cache: String, arguments: [String] = [], launcher: [String] = []
    ) async throws -> (answers: [JSONValue], stats: JSONValue) {
        let session = try RPCSession(
            arguments + ["--log-level", "error"], environment: ["OCIRPC_CACHE_DIR": cache], launcher: launcher)
        var answers: [JSONValue] = []
        for (method, params) in calls { answers.append(try await session.call(method, params)) }
        let stats = try await session.result("server.stats", [])
        await session.close()
        return (answers, stats)
    }

    private static func manifestRequests(_ stats: JSONValue) -> Int {
        stats["registryRequests"]?["manifest"]?.intValue ?? -1
    }

    @Test func aSecondProcessAnswersFromDiskWithoutTheRegistry() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        var calls: [(String, JSONValue)] = []
        for i in 0..<5 {
            let pushed = try await registry.pushMinimalImage("disk", "v\(i)", annotations: #"{"i":"\#(i)"}"#)
            calls.append(("ec.oci.image_manifest", [.string("\(registry.host)/disk:v\(i)")]))
            calls.append(("ec.oci.image_manifest", [.string("\(registry.host)/disk@\(pushed.digest)")]))
            calls.append(("ec.oci.descriptor", [.string("\(registry.host)/disk:v\(i)")]))
        }
        let first = try await Self.run(calls, cache: cache)
        #expect(first.answers.allSatisfy { $0["result"] != nil })
        #expect(Self.manifestRequests(first.stats) == 5)
        #expect(first.stats["diskCache"]?["enabled"] == true)

        let second = try await Self.run(calls, cache: cache)
        #expect(second.answers.map { $0["result"] } == first.answers.map { $0["result"] })
        #expect(Self.manifestRequests(second.stats) == 0, "\(second.stats)")
        #expect((second.stats["diskCache"]?["hits"]?.intValue ?? 0) >= 5)
    }

    @Test func aManifestReadBackFromDiskIsTakenFromTheMemoryBudgetAsAFetchedOneIs() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        // An index of 300 KB, mostly blanks: its answer is small.
        let index = #"{"schemaVersion":2,"mediaType":"\#(ManifestMediaType.ociIndex)","manifests":[]}"#
        let bytes = Data((index + String(repeating: " ", count: 300_000)).utf8)
        _ = try await registry.pushManifest("held", "index", bytes, mediaType: ManifestMediaType.ociIndex)
        let call = [("ec.oci.image_index", JSONValue.array([.string("\(registry.host)/held:index")]))]
        let first = try await Self.run(call, cache: cache)
        #expect(first.answers.first?["result"]?["manifests"] == [])
        #expect(Self.manifestRequests(first.stats) == 1)
        // Read back from disk, it is held against the budget as it would be
        // fetched: 256 KiB has no room for it, 64 MiB has (for it and for
        // shaping an answer from it: `ShapingCharge`).
        let refused = try await Self.run(call, cache: cache, arguments: ["--max-memory-bytes", "256KiB"])
        #expect(refused.answers.first?.errorReason == "memory_limit")
        #expect(refused.answers.first?["error"]?["data"]?["retryable"] == true)
        #expect(Self.manifestRequests(refused.stats) == 0)
        #expect(refused.stats["memoryHeld"]?["used"] == 0)
        let answered = try await Self.run(call, cache: cache, arguments: ["--max-memory-bytes", "64MiB"])
        #expect(answered.answers.first?["result"] == first.answers.first?["result"])
        #expect(Self.manifestRequests(answered.stats) == 0)
    }

    /// An index read back from disk whose entry embeds its manifest is
    /// read through the entry, as a fetched one is: the registry (which
    /// no longer holds that manifest) is not asked, by either process, and
    /// the second does not even load the HTTP library. Embedded bytes that
    /// are not the entry's manifest stay `digest_mismatch` when the disk
    /// holds the manifest the entry names.
    @Test func anIndexOnDiskIsReadThroughTheManifestItsEntryEmbeds() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let amd64 = #"{"os":"linux","architecture":"amd64"}"#
        let image = try await registry.pushImage("disk", "image", config: #"{"image":"embedded"}"#)
        let other = try await registry.pushImage("disk", "other", config: #"{"image":"other"}"#)
        let index = try await registry.pushIndex("disk", "index", entries: [(image, amd64)], embedding: [image.bytes])
        let wrong = try await registry.pushIndex("disk", "wrong", entries: [(other, amd64)], embedding: [image.bytes])
        try await registry.deleteManifest("disk", image.digest)
        func call(_ digest: String) -> (String, JSONValue) {
            ("ec.oci.image_manifest", [.string("\(registry.host)/disk@\(digest)")])
        }
        let size = JSONValue.integer(#"{"image":"embedded"}"#.utf8.count)

        let first = try await Self.run([call(index.digest), call(other.digest), call(wrong.digest)], cache: cache)
        #expect(first.answers[0]["result"]?["config"]?["size"] == size, "\(first.answers)")
        #expect(first.answers[2].errorReason == "digest_mismatch", "\(first.answers)")
        #expect(Self.manifestRequests(first.stats) == 3)
        let session = try RPCSession(["--log-level", "error"], environment: ["OCIRPC_CACHE_DIR": cache])
        let second = try await session.call(call(index.digest).0, call(index.digest).1)
        #expect(second["result"]?["config"]?["size"] == size, "\(second.jsonText)")
        let maps = try String(
            contentsOfFile: "/proc/\(session.process.process.processIdentifier)/maps", encoding: .utf8)
        #expect(!maps.contains("libcurl"))
        let refused = try await session.call(call(wrong.digest).0, call(wrong.digest).1)
        #expect(refused.errorReason == "digest_mismatch", "\(refused.jsonText)")
        await session.close()
    }

    /// An image manifest an index's entry gives as an index stays
    /// `ambiguous_manifest` when the disk holds both: the answer read from
    /// disk checks the entry as a fetched one does.
    @Test func anEntryGivingItsManifestAsTheOtherKindIsRefusedFromDiskToo() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let image = try await registry.pushImage("disk", "image")
        let index = try await registry.pushIndex(
            "disk", "index", entries: [(image, #"{"os":"linux","architecture":"amd64"}"#)], entriesAreIndexes: true)
        let calls: [(String, JSONValue)] = [image, index].map {
            ("ec.oci.image_manifest", [.string("\(registry.host)/disk@\($0.digest)")])
        }
        for round in 0..<2 {
            let run = try await Self.run(calls, cache: cache)
            #expect(run.answers[0]["result"] != nil, "\(run.answers)")
            #expect(run.answers[1].errorReason == "ambiguous_manifest", "round \(round): \(run.answers)")
            #expect(Self.manifestRequests(run.stats) == (round == 0 ? 2 : 0), "\(run.stats)")
        }
    }

    @Test func aProcessAnsweredFromDiskNeverLoadsTheHTTPLibrary() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let pushed = try await registry.pushMinimalImage("fixed", "v1")
        let refs: JSONValue = [
            .string("\(registry.host)/fixed:v1"), .string("\(registry.host)/fixed@\(pushed.digest)"),
        ]
        _ = try await Self.run([("ec.oci.image_manifests", [refs])], cache: cache)
        let session = try RPCSession(["--log-level", "error"], environment: ["OCIRPC_CACHE_DIR": cache])
        let answer = try await session.result("ec.oci.image_manifests", [refs])
        #expect(answer.objectValue?.count == 2)
        // libcurl (and the TLS library's start-up) is the fixed cost of a
        // registry request; a process the disk answers does not pay it.
        let maps = try String(
            contentsOfFile: "/proc/\(session.process.process.processIdentifier)/maps", encoding: .utf8)
        #expect(!maps.contains("libcurl"))
        await session.close()
    }

    @Test func derivedResultsAreAnsweredFromDiskWithoutDownloads() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        var tar = TarBuilder()
        tar.file("etc/policy/a.yaml", "kind: policy\ncount: 1\n")
        // A file as deep as files are read: the result around it is deeper.
        let depth = JSONParser.defaultMaxDepth
        let deep = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        tar.file("etc/policy/deep.json", deep)
        tar.file("etc/other.txt", "not read")
        let layer = Compressors.gzip(tar.archive)
        let image = try await registry.pushImage(
            "derived", "v1", config: #"{"architecture":"amd64"}"#, layers: [(layer, Expected.gzipLayer)])
        let layerDigest = try #require(
            try JSONParser.parse(Array(image.bytes))["layers"]?.arrayValue?.first?["digest"]?.stringValue)
        let configDigest = try #require(try JSONParser.parse(Array(image.bytes))["config"]?["digest"]?.stringValue)
        let calls: [(String, JSONValue)] = [
            ("ec.oci.image_files", [.string("\(registry.host)/derived@\(image.digest)"), ["etc/policy"]]),
            ("ec.oci.blob_files", [.string("\(registry.host)/derived@\(layerDigest)"), ["etc/policy/a.yaml"]]),
            ("ec.oci.parsed_blob", [.string("\(registry.host)/derived@\(configDigest)")]),
        ]
        let first = try await Self.run(calls, cache: cache)
        #expect(first.answers[0]["result"]?["etc/policy/a.yaml"] == ["kind": "policy", "count": 1])
        #expect(first.answers[0]["result"]?["etc/policy/deep.json"]?.jsonText == deep)
        #expect(first.answers[1]["result"]?["etc/policy/a.yaml"]?["count"] == 1)
        #expect(first.answers[2]["result"]?["architecture"] == "amd64")
        #expect((first.stats["registryRequests"]?["blob"]?.intValue ?? 0) >= 2)
        let second = try await Self.run(calls, cache: cache)
        #expect(second.answers.map { $0["result"] } == first.answers.map { $0["result"] })
        #expect(second.stats["registryRequests"]?["blob"] == 0, "\(second.stats)")
        // Each result read back whole (one hit each), none derived again
        // from the blobs on disk and written anew.
        #expect(second.stats["diskCache"]?["hits"] == 3, "\(second.stats)")
        #expect(second.stats["diskCache"]?["writes"] == 0, "\(second.stats)")
        #expect(Self.manifestRequests(second.stats) == 0)
        // Another repository of the same registry gets nothing of it.
        let stranger = try await Self.run(
            [("ec.oci.parsed_blob", [.string("\(registry.host)/stranger@\(configDigest)")])], cache: cache)
        #expect(stranger.answers[0]["error"]?["code"] == -32001)
    }

    @Test func blobsAreServedFromDiskAndADamagedOneIsFetchedAgain() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let image = try await registry.pushImage(
            "blobs", "v1", config: #"{"architecture":"amd64"}"#,
            layers: [(Array(repeating: 0x5A, count: 200_000), "application/vnd.oci.image.layer.v1.tar")])
        let manifest = try JSONParser.parse(Array(image.bytes))
        let layer = try #require(manifest["layers"]?.arrayValue?.first?["digest"]?.stringValue)
        let calls: [(String, JSONValue)] = [("ec.oci.blob", [.string("\(registry.host)/blobs@\(layer)")])]
        let first = try await Self.run(calls, cache: cache)
        #expect(first.answers[0]["result"]?.stringValue?.count == 200_000)
        #expect(first.stats["registryRequests"]?["blob"] == 1)
        let second = try await Self.run(calls, cache: cache)
        #expect(second.answers[0]["result"] == first.answers[0]["result"])
        #expect(second.stats["registryRequests"]?["blob"] == 0, "\(second.stats)")
        // The same length, one byte changed: only the hash can tell.
        let path = cache + "/blobs/sha256/" + String(layer.dropFirst("sha256:".count))
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[100_000] = 0x5B
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let third = try await Self.run(calls, cache: cache)
        #expect(third.answers[0]["result"] == first.answers[0]["result"])
        #expect(third.stats["registryRequests"]?["blob"] == 1)
        #expect(third.stats["diskCache"]?["corrupt"] == 1)
        #expect(Digest.of(try Array(Data(contentsOf: URL(fileURLWithPath: path)))).description == layer)
    }

    @Test func damagedFilesAreReplacedAndAnswersStayCorrect() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let pushed = try await registry.pushMinimalImage("damaged", "v1", annotations: #"{"a":"1"}"#)
        let calls: [(String, JSONValue)] = [
            ("ec.oci.image_manifest", [.string("\(registry.host)/damaged:v1")]),
            ("ec.oci.image_manifest", [.string("\(registry.host)/damaged@\(pushed.digest)")]),
        ]
        let first = try await Self.run(calls, cache: cache)
        // Every file the cache wrote, overwritten with something else.
        let files = FileManager.default.enumerator(atPath: cache)?.allObjects as? [String] ?? []
        var damaged = 0
        for file in files where file.hasPrefix("blobs/") || file.contains("/journals/") {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: cache + "/" + file, isDirectory: &isDirectory),
                !isDirectory.boolValue
            else { continue }
            try Data(#"{"schemaVersion":2,"annotations":{"a":"forged"}}"#.utf8).write(
                to: URL(fileURLWithPath: cache + "/" + file))
            damaged += 1
        }
        #expect(damaged >= 1)
        let second = try await Self.run(calls, cache: cache)
        #expect(second.answers.map { $0["result"] } == first.answers.map { $0["result"] })
        #expect(second.answers.first?["result"]?["annotations"]?["a"] == "1")
        #expect((second.stats["diskCache"]?["corrupt"]?.intValue ?? 0) >= 1)
        #expect(Self.manifestRequests(second.stats) >= 1)
        // Replaced: a third process is served from disk again.
        let third = try await Self.run(calls, cache: cache)
        #expect(third.answers.map { $0["result"] } == first.answers.map { $0["result"] })
        #expect(Self.manifestRequests(third.stats) == 0, "\(third.stats)")
    }

    @Test func aDigestCachedForOneRepositoryIsNotServedForAnother() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let pushed = try await registry.pushMinimalImage("holder", "v1")
        let first = try await Self.run(
            [("ec.oci.image_manifest", [.string("\(registry.host)/holder@\(pushed.digest)")])], cache: cache)
        #expect(first.answers[0]["result"] != nil)
        // Another repository of the same registry that lacks it: the registry decides.
        let second = try await Self.run(
            [("ec.oci.image_manifest", [.string("\(registry.host)/stranger@\(pushed.digest)")])], cache: cache)
        #expect(second.answers[0]["error"]?["code"] == -32001)
        #expect(Self.manifestRequests(second.stats) == 1)
    }

    @Test func aBlockedRegistryIsRefusedEvenWithItsContentOnDisk() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let pushed = try await registry.pushMinimalImage("kept", "v1")
        let config = try #require(try JSONParser.parse(Array(pushed.manifest))["config"]?["digest"]?.stringValue)
        let calls: [(String, JSONValue)] = [
            ("ec.oci.image_manifest", [.string("\(registry.host)/kept:v1")]),
            ("ec.oci.descriptor", [.string("\(registry.host)/kept@\(pushed.digest)")]),
            ("ec.oci.parsed_blob", [.string("\(registry.host)/kept@\(config)")]),
        ]
        let first = try await Self.run(calls, cache: cache)
        #expect(first.answers.allSatisfy { $0["result"] != nil })
        let conf = try MirrorTests.registriesConf("[[registry]]\nlocation = \"\(registry.host)\"\nblocked = true\n")
        defer { try? FileManager.default.removeItem(at: conf) }
        let blocked = try await Self.run(calls, cache: cache, arguments: ["--registries-conf", conf.path])
        for answer in blocked.answers {
            #expect(answer.errorReason == "blocked", "\(answer.jsonText)")
        }
    }

    @Test func aTagIsReusedAcrossProcessesOnlyWithinTheTTL() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        try await registry.pushMinimalImage("moving", "v1", annotations: #"{"n":"1"}"#)
        let call: [(String, JSONValue)] = [("ec.oci.image_manifest", [.string("\(registry.host)/moving:v1")])]
        // Whether a tag answer on disk is reused is the reading process's
        // TTL against the time it was fetched: a long one takes it, a
        // short one does not. (No sleeps that a loaded machine could outlast.)
        let first = try await Self.run(call, cache: cache, arguments: ["--tag-ttl", "1h"])
        #expect(first.answers[0]["result"]?["annotations"]?["n"] == "1")
        try await registry.pushMinimalImage("moving", "v1", annotations: #"{"n":"2"}"#)
        let soon = try await Self.run(call, cache: cache, arguments: ["--tag-ttl", "1h"])
        #expect(soon.answers[0]["result"]?["annotations"]?["n"] == "1", "within the TTL the disk's answer stands")
        #expect(Self.manifestRequests(soon.stats) == 0)
        try await Task.sleep(for: .milliseconds(100))
        let later = try await Self.run(call, cache: cache, arguments: ["--tag-ttl", "50ms"])
        #expect(later.answers[0]["result"]?["annotations"]?["n"] == "2")
        #expect(Self.manifestRequests(later.stats) == 1)
    }

    @Test func anUnusableCacheDirectoryFailsNoRequest() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        // A regular file where the directory should be: nothing can be created.
        let file = Self.directory()
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await registry.pushMinimalImage("plain", "v1")
        let run = try await Self.run(
            [("ec.oci.image_manifest", [.string("\(registry.host)/plain:v1")])], cache: file + "/cache")
        #expect(run.answers[0]["result"]?["schemaVersion"] == 2)
        #expect(run.stats["diskCache"]?["enabled"] == false)
    }

    /// Runs the server in a user and mount namespace of its own where
    /// `mount` (a shell command, the directory as `$0`) has just mounted
    /// something on the cache directory; nothing outside sees the mount.
    private static func inNamespace(_ cache: String, mount: String) -> [String] {
        ["/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/sh", "-c", mount + #" && exec "$@""#, cache]
    }

    @Test func aFullCacheDiskFailsNoRequest() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let big = (0..<3_000_000).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let image = try await registry.pushImage(
            "full", "v1", config: #"{"architecture":"amd64"}"#,
            layers: [(big, "application/vnd.oci.image.layer.v1.tar")])
        let layer = try #require(
            try JSONParser.parse(Array(image.bytes))["layers"]?.arrayValue?.first?["digest"]?.stringValue)
        var calls: [(String, JSONValue)] = [("ec.oci.blob", [.string("\(registry.host)/full@\(layer)")])]
        for i in 0..<20 {
            try await registry.pushMinimalImage("full", "t\(i)", annotations: #"{"i":"\#(i)"}"#)
            calls.append(("ec.oci.image_manifest", [.string("\(registry.host)/full:t\(i)")]))
        }
        // A 1 MiB tmpfs: the 3 MB layer cannot be downloaded into it (its
        // root made the user's own: a tmpfs's own is every user's, 1777).
        let run = try await Self.run(
            calls, cache: cache,
            launcher: Self.inNamespace(cache, mount: #"mount -t tmpfs -o size=1m,mode=0700 ocirpc-test "$0""#))
        #expect(run.answers[0]["result"]?.stringValue == String(decoding: big, as: UTF8.self))
        for i in 0..<20 { #expect(run.answers[i + 1]["result"]?["annotations"]?["i"] == .string("\(i)")) }
        #expect(run.stats["diskCache"]?["enabled"] == true)
        #expect((run.stats["diskCache"]?["failures"]?.intValue ?? 0) >= 1, "\(run.stats)")
        #expect(run.stats["registryRequests"]?["blob"]?.intValue == 2, "once into the cache, once elsewhere")
    }

    /// A tag's answer on disk is checked only against itself: whoever can
    /// write the directory can plant one. The user's own directory is
    /// trusted with that; one that every user can write is not used.
    @Test func aTagAnswerPlantedInACacheEveryUserCanWriteIsNotServed() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        try await registry.pushMinimalImage("planted", "v1", annotations: #"{"from":"the registry"}"#)
        let forged = FetchedManifest(
            bytes: Array(
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[],"annotations":{"from":"a plant"}}"#
                    .utf8), mediaType: "application/vnd.oci.image.manifest.v1+json")
        let disk = try #require(DiskCache.open(directory: cache, logger: .disabled))
        disk.storeManifest(forged, repository: "\(registry.host)/planted", tag: "\(registry.host)/planted:v1")
        let calls: [(String, JSONValue)] = [("ec.oci.image_manifest", [.string("\(registry.host)/planted:v1")])]

        // The plant takes: in a directory of the user's own, it is the user's.
        let own = try await Self.run(calls, cache: cache)
        #expect(own.answers[0]["result"]?["annotations"]?["from"] == "a plant")

        #expect(chmod(cache, 0o777) == 0)
        let session = try RPCSession(["--log-level", "warn"], environment: ["OCIRPC_CACHE_DIR": cache])
        let answer = try await session.call("ec.oci.image_manifest", [.string("\(registry.host)/planted:v1")])
        let stats = try await session.result("server.stats", [])
        await session.close()
        #expect(answer["result"]?["annotations"]?["from"] == "the registry")
        #expect(stats["diskCache"]?["enabled"] == false)
        #expect(session.process.stderr.contains("is writable by every user"), "\(session.process.stderr)")
    }

    /// A server started without stdout or stderr writes nothing into the
    /// files it opens: its answers and log lines went into the cache's lock
    /// file, which took the free descriptor.
    @Test(arguments: [1, 2])
    func aServerStartedWithAStandardStreamClosedWritesNothingIntoTheCache(closed: Int) async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        try await registry.pushMinimalImage("streams", "v1")
        let server = try ServerProcess(
            ["--log-level", "debug"], environment: ["OCIRPC_CACHE_DIR": cache],
            launcher: ["/bin/sh", "-c", #"exec "$@" \#(closed)>&-"#, "sh"])
        for (id, ref) in ["streams:v1", "streams:v1", "streams:absent"].enumerated() {
            server.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["\#(registry.host)/\#(ref)"]}"#
            )
        }
        server.closeInput()
        #expect(await server.waitForExit() == 0)
        for lock in ["fetch.lock", "trim.lock"] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: cache + "/ocirpc/v2/" + lock))
            #expect(bytes.isEmpty, "\(lock): \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        #expect(
            try Self.tagsKeptWhole(cache, repository: "\(registry.host)/streams", tags: ["\(registry.host)/streams:v1"])
                == 1)
    }

    @Test func aReadOnlyCacheDirectoryFailsNoRequest() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let calls: [(String, JSONValue)] = [("ec.oci.image_manifest", [.string("\(registry.host)/frozen:v1")])]
        try await registry.pushMinimalImage("frozen", "v1", annotations: #"{"a":"1"}"#)
        let first = try await Self.run(calls, cache: cache)
        let frozen = try await Self.run(
            calls, cache: cache,
            launcher: Self.inNamespace(cache, mount: #"mount --bind "$0" "$0" && mount -o remount,ro,bind "$0""#))
        #expect(frozen.answers[0]["result"] == first.answers[0]["result"])
        #expect(frozen.answers[0]["result"]?["annotations"]?["a"] == "1")
        #expect(frozen.stats["diskCache"]?["enabled"] == false)
    }

    /// How many of `tags` (of `repository`) the disk cache in `cache` holds,
    /// their manifests whole; nothing in it damaged.
    private static func tagsKeptWhole(_ cache: String, repository: String, tags: [String]) throws -> Int {
        let disk = try #require(DiskCache.open(directory: cache, logger: .disabled))
        var kept = 0
        for tag in tags {
            guard let digest = disk.tag(tag, repository: repository, maxAge: 3_600) else { continue }
            #expect(disk.manifest(digest, repository: repository)?.digest == digest, "\(tag) is not whole")
            kept += 1
        }
        #expect(disk.statistics.corrupt == 0)
        return kept
    }

    @Test func processesStartedTogetherShareOneDirectorySafely() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let count = 100
        for i in 0..<count { try await registry.pushMinimalImage("crowd", "t\(i)", annotations: #"{"i":"\#(i)"}"#) }
        let refs = (0..<count).map { JSONValue.string("\(registry.host)/crowd:t\($0)") }
        let runs = try await withThrowingTaskGroup(of: (answers: [JSONValue], stats: JSONValue).self) { group in
            for _ in 0..<8 {
                group.addTask { try await Self.run([("ec.oci.image_manifests", [.array(refs)])], cache: cache) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var requests = 0
        for run in runs {
            let result = try #require(run.answers.first?["result"]?.objectValue)
            #expect(result.count == count)
            for i in 0..<count {
                #expect(result["\(registry.host)/crowd:t\(i)"]?["annotations"]?["i"] == .string("\(i)"))
            }
            requests += Self.manifestRequests(run.stats)
        }
        print("8 processes started together over \(count) cold tags: \(requests) manifest requests in all")
        // Each tag fetched once: the others wait on its fetch lock, then
        // find it on disk (a few more only if a holder outlived the wait).
        #expect(requests >= count && requests <= count + count / 10, "\(requests) manifest requests for \(count) tags")
        let tags = (0..<count).map { "\(registry.host)/crowd:t\($0)" }
        #expect(try Self.tagsKeptWhole(cache, repository: "\(registry.host)/crowd", tags: tags) == count)
        let after = try await Self.run([("ec.oci.image_manifests", [.array(refs)])], cache: cache)
        #expect(Self.manifestRequests(after.stats) == 0)
    }

    @Test func aProcessKilledMidBatchLeavesNothingHalfWritten() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let proxy = try RegistryProxy(upstream: registry.host)
        defer { proxy.stop() }
        let cache = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let count = 200
        for i in 0..<count { try await registry.pushMinimalImage("killed", "t\(i)", annotations: #"{"i":"\#(i)"}"#) }
        let refs = (0..<count).map { JSONValue.string("\(proxy.host)/killed:t\($0)") }
        // Slow enough (200 refs, 8 at a time, 0.1 s each: 2.5 s) that the kill
        // lands mid-batch even when this test is descheduled for a while.
        proxy.setLatency(0.1)
        let victim = try RPCSession(["--log-level", "error"], environment: ["OCIRPC_CACHE_DIR": cache])
        victim.send("ec.oci.image_manifests", [.array(refs)])
        // Killed once it has written some of the batch, not all.
        let tags = (0..<count).map { "\(proxy.host)/killed:t\($0)" }
        let repository = "\(proxy.host)/killed"
        for _ in 0..<2_000 {
            if (try? Self.tagsKeptWhole(cache, repository: repository, tags: tags)) ?? 0 >= 10 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        kill(victim.process.process.processIdentifier, SIGKILL)
        _ = await victim.process.waitForExit()
        let written = try Self.tagsKeptWhole(cache, repository: repository, tags: tags)
        #expect(written >= 10 && written < count, "killed after \(written) of \(count)")
        proxy.setLatency(0)
        let next = try await Self.run([("ec.oci.image_manifests", [.array(refs)])], cache: cache)
        let result = try #require(next.answers.first?["result"]?.objectValue)
        #expect(result.count == count)
        for i in 0..<count {
            #expect(result["\(proxy.host)/killed:t\(i)"]?["annotations"]?["i"] == .string("\(i)"))
        }
        // A manifest and its tag are one record: all of what was written is
        // used. (Unless the kill cut a record short mid-write: what follows
        // it then cannot be trusted, and the journal is discarded.)
        if next.stats["diskCache"]?["corrupt"] == 0 {
            #expect(Self.manifestRequests(next.stats) == count - written)
        } else {
            #expect(Self.manifestRequests(next.stats) <= count)
        }
    }
}
