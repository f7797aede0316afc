import Reasons
import Archive
import CSystem
import Caching
import Dispatch
import FoundationEssentials
import Glibc
import JSON
import Locking
import Memory
import RPCDispatch
import Registry
import YAML

/// Where every method gets registry content, through the caches: content
/// named by digest in one byte-budgeted LRU, tag -> digest answers for the
/// tag TTL, and identical concurrent work run once (singleflight).
final class ContentService: Sendable {
    /// A decompressed blob held in memory (`blob`, `parsed_blob`) is at most
    /// this: its answer (base64 for `blob`) and copies peak at about 4x.
    static let maxBlobBytes = 128 << 20
    /// Decoded bytes one request may read by default (`--max-decompressed-bytes`).
    static let defaultMaxDecompressedBytes = 8 << 30
    /// Archive entries larger than this are skipped (`blob_files`, `image_files`).
    static let maxEntryBytes = 500 << 20
    /// The most layers an image may list for `image_files`, which downloads
    /// each: a 4 MiB manifest can list some 40,000, each a request bounded
    /// only on its own (Docker stops near 127).
    static let maxImageLayers = 1000
    /// The most indexes below the first that an image is looked for in (an
    /// index whose entry is another index, as the original and runtimes
    /// follow it): each is one more manifest request, and a chain of them
    /// is as long as its author likes.
    static let maxNestedIndexes = 8

    /// Where content comes from when the caches do not have it.
    let source: any ContentSource
    /// Where derived results are kept across processes, if anywhere.
    let derivedStore: (any DerivedResultStore)?
    let cache: ContentCache
    let tags: ExpiringCache<Digest>
    let defaultPlatform: Platform
    /// Decoded bytes one request may read out of its blobs, all layers together.
    let maxDecompressedBytes: Int
    /// Where blobs are downloaded; nil for the process's private directory.
    let downloads: URL?
    /// What the calls in flight may hold together; shaping an answer from
    /// a large document takes from it while it runs (`ShapingCharge`).
    let memory: MemoryBudget?
    // One per kind of work, so a key is its name alone (no prefix to join).
    private let manifestFlights = Singleflight<FetchedManifest>()
    private let tagFlights = Singleflight<FetchedManifest>()
    let valueFlights = Singleflight<JSONValue>()
    let blobFlights = Singleflight<[UInt8]>()
    private let headFlights = Singleflight<ManifestHead>()

    init(
        source: any ContentSource, cacheBytes: Int, tagTTL: Double, defaultPlatform: Platform,
        maxDecompressedBytes: Int = defaultMaxDecompressedBytes, downloads: URL? = nil,
        derivedStore: (any DerivedResultStore)? = nil, memory: MemoryBudget? = nil
    ) {
        self.memory = memory
        self.source = source
        self.derivedStore = derivedStore
        self.cache = ContentCache(capacity: cacheBytes)
        self.tags = ExpiringCache(timeToLive: tagTTL)
        self.defaultPlatform = defaultPlatform
        self.maxDecompressedBytes = maxDecompressedBytes
        self.downloads = downloads
    }

    /// A new decoding budget for one request.
    func makeBudget() -> ReadBudget { ReadBudget(bytes: maxDecompressedBytes) }

    /// Callers that shared another caller's work.
    var singleflightJoins: Int {
        manifestFlights.joins + tagFlights.joins + valueFlights.joins + blobFlights.joins + headFlights.joins
    }

    func clear() {
        let held = cache.bytes
        cache.removeAll()
        tags.removeAll()
        source.clearCaches()
        // What the caches held goes back to the system, not just to malloc
        // (worth a trim only when they held much). glibc may keep a thread
        // arena's top resident, to be reused (bench/README.md: "Freed memory").
        if held > 1 << 20 { ocirpc_release_free_memory() }
    }

    // MARK: - Manifests and indexes

    /// The digest `ref` names as far as the caches know: its own, or the
    /// tag cache's answer. One tag-cache lookup; callers pass the answer on
    /// rather than asking again.
    func knownDigest(_ ref: ImageReference) -> Digest? {
        ref.digest ?? tags.value(ref.description)
    }

    /// The manifest or index `ref` names: by a known digest from the cache
    /// or one GET, else one GET by tag.
    nonisolated(nonsending) func manifest(_ ref: ImageReference) async throws -> FetchedManifest {
        if let digest = knownDigest(ref) { return try await manifest(ref, digest: digest) }
        return try await manifestByTag(ref)
    }

    /// The manifest `digest` names in `ref`'s repository: the cache, else one GET.
    nonisolated(nonsending) func manifest(_ ref: ImageReference, digest: Digest) async throws -> FetchedManifest {
        let key = manifestKey(ref, digest)
        if let cached = cache.value(key, as: FetchedManifest.self) { return cached }
        return try await manifestFlights.run(key.name) { [self] in
            let fetched = try await source.fetchManifest(ref.pinned(to: digest))
            cache.store(fetched.uncharged, cost: fetched.bytes.count, for: key)
            return fetched
        }
    }

    /// One GET by tag for a tag the tag cache did not know (the caller has
    /// looked): caches the content by its digest, and the tag's answer.
    nonisolated(nonsending) func manifestByTag(_ ref: ImageReference) async throws -> FetchedManifest {
        let tagKey = ref.description
        return try await tagFlights.run(tagKey) { [self] in
            let fetched = try await source.fetchManifest(ref)
            cache.store(fetched.uncharged, cost: fetched.bytes.count, for: manifestKey(ref, fetched.digest))
            tags.store(fetched.digest, for: tagKey)
            return fetched
        }
    }

    /// The digest `ref` names (a tag costs one manifest GET, cached).
    func digest(of ref: ImageReference) async throws -> Digest {
        if let digest = knownDigest(ref) { return digest }
        return try await manifestByTag(ref).digest
    }

    /// The descriptor of what `ref` names: from a cached manifest, else one HEAD.
    nonisolated(nonsending) func descriptor(_ ref: ImageReference) async throws -> JSONValue {
        if let digest = knownDigest(ref), let cached = cache.value(manifestKey(ref, digest), as: FetchedManifest.self) {
            return Self.descriptor(mediaType: cached.mediaType, size: cached.bytes.count, digest: cached.digest)
        }
        let head = try await headFlights.run(ref.description) { [self] in
            let head = try await source.headManifest(ref)
            if ref.digest == nil { tags.store(head.digest, for: ref.description) }
            return head
        }
        return Self.descriptor(mediaType: head.mediaType, size: head.size, digest: head.digest)
    }

    /// Whether the tag `ref` names exists (a HEAD unless the tag cache
    /// knows). Only the registry's 404 means no; any other failure throws.
    func tagExists(_ ref: ImageReference) async throws -> Bool {
        if tags.value(ref.description) != nil { return true }
        do {
            let head = try await headFlights.run(ref.description) { [source] in
                try await source.headManifest(ref)
            }
            tags.store(head.digest, for: ref.description)
            return true
        } catch let error as RegistryError where error.kind == .notFound {
            return false
        }
    }

    /// The `image_referrers` answer: the manifests referring to what `ref`
    /// names, shaped from the bytes of their listing's pages (`JSONTape`),
    /// which are taken from the memory budget while shaped (`ShapingCharge`).
    func referrersAnswer(_ ref: ImageReference) async throws -> JSONValue {
        let digest = try await digest(of: ref)
        guard let listing = try await source.fetchReferrers(ref.pinned(to: digest)) else {
            return .encoded(EncodedJSON(writing: { $0.append("[]") }))
        }
        // Taken as for one index of all the pages' bytes: the tapes of
        // every page, and an answer from all of them.
        let text = listing.byteCount
        let answer = Shapes.maxReferrersBytes(forText: text, repository: ref.name)
        return try ShapingCharge.holding(ShapingCharge.bytes(forText: text, answer: answer), from: memory) {
            let tapes = try listing.pages.enumerated().map { number, page in
                let which = listing.pages.count > 1 ? " (page \(number + 1))" : ""
                let tape = try Self.objectTape(
                    page.bytes, notJSON: "the referrers of \(ref) are not a JSON index\(which)")
                try tape.withRoot { root throws(RPCError) in
                    try Self.requireGoReading(root, of: "the referrers of \(ref)\(which)")
                }
                // An answer of the API without its list is a failure, not "none".
                guard !listing.fromTheAPI || tape.withRoot({ $0.member("manifests")?.isArray == true }) else {
                    throw RPCError(
                        .unsupportedContent, reason: .invalidManifest,
                        message: "the referrers of \(ref) came without a manifests array\(which)")
                }
                return tape
            }
            return try Shapes.referrers(pages: tapes.count, repository: ref.name) {
                (number, write: (JSONTape.Node) -> Void) in tapes[number].withRoot(write)
            }
        }
    }

    // MARK: - Reading manifests as Go reads them

    /// What `body` makes of `manifest`, read on its tape (`shaping(_:answer:notJSON:_:)`),
    /// with room for an answer made from it when `answer`. A manifest Go
    /// would read otherwise is refused first (`ManifestTypeCheck`).
    func shaping<T>(
        _ manifest: FetchedManifest, ref: ImageReference, answer: Bool, _ body: (JSONTape.Node) throws -> T
    ) throws -> T {
        try shaping(
            manifest.bytes, answer: answer ? Shapes.maxAnswerBytes(forText: manifest.bytes.count) : 0,
            notJSON: "the manifest of \(ref) is not a JSON object"
        ) { root in
            try Self.requireGoReading(root, of: "the manifest of \(ref)")
            return try body(root)
        }
    }

    /// Refuses a document Go's readers would refuse (`invalid_manifest`),
    /// or read otherwise than its shaping does (`ambiguous_manifest`; see
    /// `ManifestTypeCheck`).
    static func requireGoReading<Node: JSONDocumentNode>(_ document: Node, of what: @autoclosure () -> String)
        throws(RPCError)
    {
        guard let problem = ManifestTypeCheck.problem(in: document) else { return }
        throw RPCError(.unsupportedContent, reason: problem.reason, message: "\(what()) is refused: \(problem)")
    }

    /// What `body` makes of the JSON object `text` is, read on its tape,
    /// with what that holds taken from the memory budget until `body`
    /// returns (`ShapingCharge`): the tape, and an answer of at most
    /// `answer` bytes written from it. A text that is not a JSON object is
    /// `not_json`, with the message `notJSON`.
    func shaping<T>(
        _ text: [UInt8], answer: Int, notJSON: @autoclosure () -> String, _ body: (JSONTape.Node) throws -> T
    ) throws -> T {
        try ShapingCharge.holding(ShapingCharge.bytes(forText: text.count, answer: answer), from: memory) {
            try Self.objectTape(text, notJSON: notJSON()).withRoot(body)
        }
    }

    /// The tape of `text`, a JSON object; else `not_json`, with the message
    /// `notJSON`. Read as the original reads manifests (Go's
    /// `encoding/json`): text that is not Unicode is U+FFFD, not a failure,
    /// and nesting as deep as Go reads is read.
    static func objectTape(_ text: [UInt8], notJSON: @autoclosure () -> String) throws(RPCError) -> JSONTape {
        guard let tape = try? JSONTape.parse(text, maxDepth: JSONParser.goMaxDepth, reading: .asGo),
            tape.withRoot({ $0.isObject })
        else {
            throw RPCError(.unsupportedContent, reason: .notJSON, message: notJSON())
        }
        return tape
    }

    // MARK: - Helpers

    func manifestKey(_ ref: ImageReference, _ digest: Digest) -> ContentCache.Key {
        ContentCache.Key("manifest", String(joining: ref.name, "@", digest.description))
    }

    func imageManifestKey(_ ref: ImageReference, _ digest: Digest, _ platform: Platform) -> ContentCache.Key {
        ContentCache.Key(
            "image_manifest", String(joining: ref.name, "@", digest.description, "|", platform.description))
    }

    static func requireDigest(_ ref: ImageReference) throws(RPCError) -> Digest {
        guard let digest = ref.digest else {
            throw RPCError(
                .invalidParams, reason: .digestRequired,
                message: "\(ref) must name a digest (repo@sha256:...)")
        }
        return digest
    }

    static func descriptor(mediaType: String, size: Int, digest: Digest) -> JSONValue {
        Shapes.descriptor([
            "mediaType": .string(mediaType), "size": .integer(size), "digest": .string(digest.description),
        ])
    }

    /// Bytes a value takes in memory (what the cache budget counts).
    static func cost(_ value: JSONValue) -> Int {
        value.memoryFootprint + 64
    }
}
