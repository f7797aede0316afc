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
    private let downloads: URL?
    /// What the calls in flight may hold together; shaping an answer from
    /// a large document takes from it while it runs (`ShapingCharge`).
    let memory: MemoryBudget?
    // One per kind of work, so a key is its name alone (no prefix to join).
    private let manifestFlights = Singleflight<FetchedManifest>()
    private let tagFlights = Singleflight<FetchedManifest>()
    private let valueFlights = Singleflight<JSONValue>()
    private let blobFlights = Singleflight<[UInt8]>()
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
    nonisolated(nonsending) private func manifestByTag(_ ref: ImageReference) async throws -> FetchedManifest {
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

    /// A layer as an image manifest lists it, for reading its files.
    struct ImageLayer: Sendable {
        let digest: Digest
        /// The size its manifest gives (nil when none, or negative).
        let size: Int?
        /// Whether its descriptor says where else its bytes are (`urls`,
        /// a foreign layer's, or `data`, embedded): where the registry does
        /// not hold the layer, the original reads it from there.
        let namesElsewhere: Bool
        /// Whether its descriptor embeds its bytes (`data`), which are read
        /// before the registry is asked, as the original reads them
        /// (`embeddedBytes`).
        let isEmbedded: Bool
    }

    /// A descriptor of an image manifest that may embed its blob (`data`).
    enum EmbeddingDescriptor: Sendable, Hashable {
        /// The config's.
        case config
        /// The layer's at this position, bottom first.
        case layer(Int)
    }

    /// An image's config, as its manifest names it.
    struct ImageConfig: Sendable {
        let digest: Digest
        /// The size its manifest gives (nil when none, or negative).
        let size: Int?
        /// Whether its descriptor embeds its bytes (`data`).
        let isEmbedded: Bool
    }

    /// The layers of the image manifest `ref` names for `platform` (`ref`
    /// itself, or its index's entry), top one last; and its config.
    nonisolated(nonsending) func imageLayers(
        _ ref: ImageReference, platform: Platform
    ) async throws -> (layers: [ImageLayer], config: ImageConfig?) {
        try await withImageManifest(of: try await manifest(ref), ref: ref, platform: platform, answer: false) { root in
            let config = root.member("config").flatMap { descriptor in
                descriptor.member("digest")?.stringText.flatMap(Digest.init).map {
                    ImageConfig(digest: $0, size: Self.size(of: descriptor), isEmbedded: Self.embeds(descriptor))
                }
            }
            var layers: [ImageLayer] = []
            var invalid = false
            var tooMany = false
            _ = root.member("layers")?.forEachElement { layer in
                guard !invalid, !tooMany else { return }
                guard layers.count < Self.maxImageLayers else {
                    tooMany = true
                    return
                }
                guard let digest = layer.member("digest")?.stringText.flatMap(Digest.init) else {
                    invalid = true
                    return
                }
                var urls = 0
                _ = layer.member("urls")?.forEachElement { _ in urls += 1 }
                let isEmbedded = Self.embeds(layer)
                layers.append(
                    ImageLayer(
                        digest: digest,
                        size: Self.size(of: layer),
                        namesElsewhere: urls > 0 || isEmbedded, isEmbedded: isEmbedded))
            }
            guard !invalid else {
                throw RPCError(
                    .unsupportedContent, reason: .invalidManifest, message: "a layer of \(ref) has no valid digest")
            }
            guard !tooMany else {
                throw RPCError(
                    .limitExceeded, reason: .tooManyLayers,
                    message:
                        "\(ref) lists more than \(Self.maxImageLayers) layers, each of which image_files would download"
                )
            }
            return (layers, config)
        }
    }

    /// Whether `descriptor` embeds bytes (a `data` that is not empty).
    private static func embeds(_ descriptor: JSONTape.Node) -> Bool {
        descriptor.member("data")?.withStringUTF8 { !$0.isEmpty } ?? false
    }

    /// The size `descriptor` gives; nil when none, or negative.
    fileprivate static func size(of descriptor: JSONTape.Node) -> Int? {
        descriptor.member("size")?.numberText.flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
    }

    /// What an image's config says each layer holds uncompressed
    /// (`rootfs.diff_ids`, bottom first), read as containerd reads it to
    /// unpack the image; nil when it says nothing (a config that is not a
    /// JSON object, or has no `diff_ids`: no runtime unpacks such an image,
    /// as it finds no layer's digest to check). A config its descriptor
    /// embeds is read from there, as the original reads embedded bytes.
    /// One the registry does not hold is `missing_config`, never the
    /// registry's `blob_unknown`: the original lists the files without
    /// reading the config, so a policy must not take the image for absent.
    func diffIDs(of config: ImageConfig, ref: ImageReference, platform: Platform) async throws -> [Digest]? {
        let bytes: [UInt8]
        if config.isEmbedded, let embedded = try await embeddedBytes(ref, platform: platform, of: [.config])[.config] {
            try Self.checkEmbedded(embedded, digest: config.digest, size: config.size, of: ref)
            bytes = embedded
        } else {
            do {
                bytes = try await withDownloadedBlob(
                    ref.pinned(to: config.digest), size: Self.maxBlobBytes, budget: makeBudget(), compressionAs: .asIs
                ) { stream in
                    let share = MemoryShare.current
                    return try stream.readAll(limit: Self.maxBlobBytes) { share?.refusal(taking: $0) }
                }
            } catch let error as RegistryError where error.kind == .notFound {
                throw RPCError(
                    .unsupportedContent, reason: .missingConfig,
                    message:
                        "the config of \(ref) (\(config.digest)) is not in the registry (\(error.message)): its layers cannot be checked against it, and no runtime can run the image"
                )
            }
        }
        guard let tape = try? JSONTape.parse(bytes, maxDepth: JSONParser.goMaxDepth, reading: .asGo) else {
            return nil
        }
        return try tape.withRoot { root throws(RPCError) -> [Digest]? in
            guard root.forEachMember({ _, _ in }) else { return nil }
            if let problem = ManifestTypeCheck.problem(inConfig: root) {
                throw RPCError(
                    .unsupportedContent, reason: problem.reason,
                    message: "the config of \(ref) does not read as Go reads it: \(problem)")
            }
            guard let listed = root.member("rootfs")?.member("diff_ids"), !listed.isNull else { return nil }
            var digests: [Digest] = []
            _ = listed.forEachElement { element in
                if let digest = element.stringText.flatMap(Digest.init) { digests.append(digest) }
            }
            return digests
        }
    }

    /// The `image_manifest` answer for what `top` is, shaped from the
    /// manifest's bytes (`JSONTape`): `top` itself, or the child of the
    /// index `top` is for `platform` (one more manifest, by digest).
    nonisolated(nonsending) private func imageManifestAnswer(
        of top: FetchedManifest, ref: ImageReference, platform: Platform
    ) async throws -> JSONValue {
        try await withImageManifest(of: top, ref: ref, platform: platform, answer: true) { try Shapes.manifest($0) }
    }

    /// What `body` makes of the image manifest `top` is, or of the child
    /// of the index `top` is for `platform` (one more manifest, by
    /// digest), read on its tape. A child that is an index itself is
    /// followed for `platform` in turn, as the original (go-containerregistry's
    /// `Descriptor.Image`) and runtimes (containerd's `images.Manifest`)
    /// follow it, down to `maxNestedIndexes` indexes below `top`
    /// (`too_many_indexes`). Each tape, and the answer `body` writes when
    /// `answer`, is taken from the memory budget while it is held
    /// (`ShapingCharge`).
    nonisolated(nonsending) private func withImageManifest<T>(
        of top: FetchedManifest, ref: ImageReference, platform: Platform, answer: Bool,
        _ body: (JSONTape.Node) throws -> T
    ) async throws -> T {
        // An index's tape goes before the child is awaited: calls waiting
        // for their child hold only the charged bytes.
        func read(_ manifest: FetchedManifest, namedBy entry: IndexEntry? = nil) throws -> TopManifest<T> {
            try shaping(manifest, ref: ref, answer: answer) { root -> TopManifest<T> in
                let kind = try ManifestKind.of(manifest, root, ref: ref)
                if let entry {
                    try kind.requireAgreement(withEntryType: entry.mediaType, of: manifest.digest, ref: ref)
                }
                guard kind == .index else { return .image(try body(root)) }
                let entry = try Self.childEntry(of: root, ref: ref, platform: platform)
                // The task-local share is looked up for an index alone: an
                // image manifest's path is the batch's.
                return .index(child: try IndexEntry(entry.node, digest: entry.digest, takingFrom: MemoryShare.current))
            }
        }
        var outcome = try read(top)
        var nested = 0
        while true {
            switch outcome {
            case .image(let made): return made
            case .index(let child):
                guard nested <= Self.maxNestedIndexes else {
                    throw RPCError(
                        .limitExceeded, reason: .tooManyIndexes,
                        message:
                            "the \(platform) image of \(ref) is more than \(Self.maxNestedIndexes) indexes below it (each index's entry another index), more than the server follows"
                    )
                }
                nested += 1
                outcome = try read(try await manifest(ref, entry: child), namedBy: child)
            }
        }
    }

    /// The manifest an index's entry names: the bytes it embeds (`data`),
    /// checked against its digest and size, read as the original reads them
    /// (go-containerregistry's `childDescriptor`) without asking the
    /// registry; else the manifest of its digest (the cache, or one GET).
    /// Embedded bytes are the entry's media type, as the original reads
    /// them, and are not cached: they come with the index.
    nonisolated(nonsending) private func manifest(_ ref: ImageReference, entry: IndexEntry) async throws
        -> FetchedManifest
    {
        if let embedded = try entry.embeddedManifest(of: ref) { return embedded }
        return try await manifest(ref, digest: entry.digest)
    }

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
    private static func objectTape(_ text: [UInt8], notJSON: @autoclosure () -> String) throws(RPCError) -> JSONTape {
        guard let tape = try? JSONTape.parse(text, maxDepth: JSONParser.goMaxDepth, reading: .asGo),
            tape.withRoot({ $0.isObject })
        else {
            throw RPCError(.unsupportedContent, reason: .notJSON, message: notJSON())
        }
        return tape
    }

    /// The first entry of an index for `platform`, and its digest. Refused
    /// (`ambiguous_platform`) when another entry is one a runtime that
    /// normalises platforms (containerd, so Docker and Kubernetes on it)
    /// takes for `platform` too: `x86_64` for `amd64`, `Linux` for `linux`.
    /// Such a runtime could run that entry's image, and it would rank it
    /// first when it comes first, while this answer (like the original's)
    /// would be the other one's. An entry that names no platform is
    /// `linux/amd64` (the original's reading); refused as well when it is
    /// the one picked and a later entry names the platform, which
    /// containerd ranks before it. Refused too wherever the entry
    /// containerd runs (`Platform.runtimeRank`) is another one, or the
    /// only one: containerd does not take `amd64/v2` for `amd64`, and runs
    /// `386` on `amd64` (`PlatformParity` compares the two).
    private static func childEntry<Index: JSONDocumentNode>(
        of index: Index, ref: ImageReference, platform: Platform
    ) throws(RPCError) -> (node: Index, digest: Digest) {
        var entry: Index?
        var entryIsUnnamed = false
        var namedAfterUnnamed = false
        var writtenOtherwise: String?
        var place = 0
        var picked: Int?
        // The entry containerd runs, of those that name a platform: the
        // first of the best rank; else the first that names none, which it
        // runs when its config says the platform.
        var runtimeChoice: (place: Int, rank: Int, name: String)?
        var firstUnnamed: Int?
        _ = index.member("manifests")?.forEachElement { element in
            defer { place += 1 }
            let entryPlatform = element.member("platform")
            if Platform.isUnnamed(entryPlatform) {
                firstUnnamed = firstUnnamed ?? place
            } else if let rank = platform.runtimeRank(entryPlatform), rank < runtimeChoice?.rank ?? Int.max {
                runtimeChoice = (place, rank, Platform.written(entryPlatform))
            }
            if platform.matches(entryPlatform) {
                if entry == nil {
                    entry = element
                    picked = place
                    entryIsUnnamed = Platform.isUnnamed(entryPlatform)
                } else if entryIsUnnamed, !Platform.isUnnamed(entryPlatform) {
                    namedAfterUnnamed = true
                }
            } else if writtenOtherwise == nil, platform.mayBeTakenFor(entryPlatform) {
                writtenOtherwise = Platform.written(entryPlatform)
            }
        }
        if namedAfterUnnamed {
            throw RPCError(
                .unsupportedContent, reason: .ambiguousPlatform,
                message:
                    "\(ref) is an index whose first entry names no platform (taken for \(platform), as the original takes it) and a later one names \(platform), which runtimes rank first: which image would run cannot be told"
            )
        }
        if let writtenOtherwise {
            throw RPCError(
                .unsupportedContent, reason: .ambiguousPlatform,
                message:
                    "\(ref) is an index with an entry for \(writtenOtherwise), which runtimes take for \(platform) too: which image would run cannot be told"
            )
        }
        // Another entry than the original's (or one where the original
        // finds none) is what containerd runs: an entry for a variant the
        // node does not take (`amd64/v2` beside `amd64`), for what it runs
        // besides its own platform (`386` on `amd64`), or one that names
        // no platform, whose config containerd goes by.
        if let runs = runtimeChoice?.place ?? firstUnnamed, runs != picked {
            let original = picked.map { "entry \($0 + 1)" } ?? "no entry"
            let what =
                runtimeChoice.map { "entry \($0.place + 1), for \($0.name), is the one containerd runs" }
                ?? "entry \(runs + 1) names no platform, and containerd runs it when its config says so,"
            throw RPCError(
                .unsupportedContent, reason: .ambiguousPlatform,
                message:
                    "\(ref) is an index whose \(what) for \(platform), where the original reads \(original): which image would run cannot be told"
            )
        }
        guard let entry, let digest = entry.member("digest")?.stringText.flatMap(Digest.init) else {
            throw RPCError(
                .unsupportedContent, reason: .noMatchingPlatform,
                message: "\(ref) is an index with no manifest for \(platform)")
        }
        return (entry, digest)
    }

    /// What the caches know of an `image_manifest` answer, before any request.
    enum CachedImageManifest: Sendable {
        /// The answer itself.
        case answer(JSONValue)
        /// The digest the ref names, but no answer for it yet.
        case digest(Digest)
        /// A tag the tag cache does not know.
        case unknownTag
    }

    /// Looks the tag cache (for a tag) and the answer cache up, once each,
    /// then what the source holds without a request (the disk cache): a
    /// batch answers all of those at once, and a process that only answers
    /// from them never starts the HTTP engine.
    func cachedImageManifest(_ ref: ImageReference, platform: Platform) -> CachedImageManifest {
        let digest = knownDigest(ref)
        if let digest, let answer = cache.value(imageManifestKey(ref, digest, platform), as: JSONValue.self) {
            return .answer(answer)
        }
        if let answer = storedImageManifest(digest.map { ref.pinned(to: $0) } ?? ref, tag: ref, platform: platform) {
            return .answer(answer)
        }
        return digest.map { .digest($0) } ?? .unknownTag
    }

    /// The `image_manifest` result from what the source holds locally, kept
    /// in the memory caches as a fetch would be; nil when a piece is missing
    /// or anything is amiss (the fetching path then says what).
    private func storedImageManifest(_ ref: ImageReference, tag: ImageReference, platform: Platform) -> JSONValue? {
        guard let top = source.storedManifest(ref) else { return nil }
        // Read and shaped as on the fetching path (which says why when
        // anything here fails: a refusal for memory included).
        return try? shaping(top, ref: ref, answer: true) { root -> JSONValue? in
            guard try ManifestKind.of(top, root, ref: ref) == .index else {
                return storedAnswer(ref, tag: tag, top: top, image: root, platform: platform)
            }
            let chosen = try Self.childEntry(of: root, ref: ref, platform: platform)
            let entry = try IndexEntry(chosen.node, digest: chosen.digest, takingFrom: MemoryShare.current)
            guard let child = try entry.embeddedManifest(of: ref) ?? source.storedManifest(ref.pinned(to: entry.digest))
            else { return nil }
            return try shaping(child, ref: ref, answer: true) { childRoot -> JSONValue? in
                let kind = try ManifestKind.of(child, childRoot, ref: ref)
                try kind.requireAgreement(withEntryType: entry.mediaType, of: child.digest, ref: ref)
                guard kind == .image else { return nil }
                if entry.embedded == nil {
                    cache.store(child, cost: child.bytes.count, for: manifestKey(ref, entry.digest))
                }
                return storedAnswer(ref, tag: tag, top: top, image: childRoot, platform: platform)
            }
        }
    }

    /// The answer shaped from `image` (`top` or its child), kept in the
    /// memory caches with `top` and the tag's answer.
    private func storedAnswer(
        _ ref: ImageReference, tag: ImageReference, top: FetchedManifest, image: JSONTape.Node, platform: Platform
    ) -> JSONValue? {
        cache.store(top, cost: top.bytes.count, for: manifestKey(ref, top.digest))
        if tag.digest == nil { tags.store(top.digest, for: tag.description) }
        // An answer too large to give is refused again by the fetching path.
        guard let result = try? Shapes.manifest(image) else { return nil }
        cache.store(result, cost: Self.cost(result), for: imageManifestKey(ref, top.digest, platform))
        return result
    }

    /// Makes room in the caches for `count` refs about to be fetched at
    /// once (a batch's): a manifest and an answer each, and a tag.
    func reserveCapacity(forFetching count: Int) {
        cache.reserveCapacity(forMore: 2 * count)
        tags.reserveCapacity(forMore: count)
    }

    /// The `image_manifest` result for `ref`, cached by the digest it names
    /// and the platform.
    nonisolated(nonsending) func imageManifestResult(_ ref: ImageReference, platform: Platform) async throws
        -> JSONValue
    {
        try await imageManifestResult(ref, platform: platform, after: cachedImageManifest(ref, platform: platform))
    }

    /// The `image_manifest` result, going on from what `lookup` found (the
    /// batch looks every ref up first; nothing is looked up twice).
    nonisolated(nonsending) func imageManifestResult(
        _ ref: ImageReference, platform: Platform, after lookup: CachedImageManifest
    ) async throws -> JSONValue {
        let top: FetchedManifest
        switch lookup {
        case .answer(let answer): return answer
        case .digest(let digest): top = try await manifest(ref, digest: digest)
        case .unknownTag: top = try await manifestByTag(ref)
        }
        // No flight of its own: the manifest fetches are shared, and
        // shaping the result is cheaper than a flight's task hop.
        let result = try await imageManifestAnswer(of: top, ref: ref, platform: platform)
        cache.store(result, cost: Self.cost(result), for: imageManifestKey(ref, top.digest, platform))
        return result
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

    // MARK: - Blobs

    /// The blob `ref` names, verified as stored, then decompressed when it
    /// is gzip or zstd.
    func blob(_ ref: ImageReference) async throws -> [UInt8] {
        let digest = try Self.requireDigest(ref)
        let key = ContentCache.Key("blob", "\(ref.name)@\(digest)")
        if let cached = cache.value(key, as: [UInt8].self) { return cached }
        return try await blobFlights.run(key.name) { [self] in
            let bytes = try await withDownloadedBlob(
                ref, size: Self.maxBlobBytes, budget: makeBudget(), compressionAs: .original
            ) { stream in
                let share = MemoryShare.current
                return try stream.readAll(limit: Self.maxBlobBytes) { share?.refusal(taking: $0) }
            }
            cache.store(bytes, cost: bytes.count, for: key)
            return bytes
        }
    }

    /// Downloads the blob (at most `size` bytes when the manifest says),
    /// verifies it, and hands `body` its decoded stream (its compression
    /// told as `reader` tells it: a blob read whole as the original reads
    /// it, an archive as the runtimes unpack it), metered by `budget`; the
    /// downloaded file is removed afterwards. `body` (decompression, tar
    /// reading, parsing) runs while the blob downloads (`readBlob`).
    func withDownloadedBlob<T: Sendable>(
        _ ref: ImageReference, size: Int? = nil, budget: ReadBudget, compressionAs reader: Compression.Reader,
        _ body: @escaping @Sendable (any ByteStream) throws -> T
    ) async throws -> T {
        try await readBlob(ref, size: size, budget: budget, compressionAs: reader, body).value
    }

    /// The bytes each of `descriptors` (the config's, or layers') of the
    /// image `ref` names for `platform` embeds (`data`, base64; text Go
    /// would refuse was refused with the manifest), read in one pass over
    /// the cached manifest `imageLayers` read (one pass a layer made a
    /// manifest of 1,000 embedded layers parsed 1,000 times), and taken
    /// from the call's memory share as each text is decoded. A descriptor
    /// that embeds nothing is left out.
    nonisolated(nonsending) func embeddedBytes(
        _ ref: ImageReference, platform: Platform, of descriptors: Set<EmbeddingDescriptor>
    ) async throws -> [EmbeddingDescriptor: [UInt8]] {
        guard !descriptors.isEmpty else { return [:] }
        let share = MemoryShare.current
        return try await withImageManifest(of: try await manifest(ref), ref: ref, platform: platform, answer: false) {
            root throws(MemoryLimitExceeded) in
            var found: [EmbeddingDescriptor: [UInt8]] = [:]
            var refusal: MemoryLimitExceeded?
            func decode(_ descriptor: EmbeddingDescriptor, _ node: JSONTape.Node?) {
                guard refusal == nil, descriptors.contains(descriptor), let data = node?.member("data") else { return }
                do throws(MemoryLimitExceeded) {
                    if let bytes = try Self.embeddedBytes(data, takingFrom: share) { found[descriptor] = bytes }
                } catch {
                    refusal = error
                }
            }
            decode(.config, root.member("config"))
            var place = 0
            _ = root.member("layers")?.forEachElement { layer in
                decode(.layer(place), layer)
                place += 1
            }
            if let refusal { throw refusal }
            return found
        }
    }

    /// The bytes a descriptor's `data` embeds (base64; text Go would
    /// refuse was refused with its document), taken from `share` before
    /// they are decoded: the text, copied once as it is decoded, and what
    /// it decodes to. Nil for an empty text, which embeds nothing.
    static func embeddedBytes(_ data: JSONTape.Node, takingFrom share: MemoryShare?) throws(MemoryLimitExceeded)
        -> [UInt8]?
    {
        var refusal: MemoryLimitExceeded?
        let bytes = data.withStringUTF8 { text -> [UInt8]? in
            guard !text.isEmpty else { return nil }
            do throws(MemoryLimitExceeded) {
                try share?.take(text.count * 2)
            } catch {
                refusal = error
                return nil
            }
            return Base64Text.decode(text).map { [UInt8]($0) } ?? []
        }
        if let refusal { throw refusal }
        return bytes ?? nil
    }

    /// Refuses embedded bytes that are not `digest` (of `size` bytes, when
    /// the descriptor gives one), as the original checks them.
    static func checkEmbedded(_ bytes: [UInt8], digest: Digest, size: Int?, of ref: ImageReference) throws(RPCError) {
        guard Digest.of(bytes, algorithm: digest.algorithm) == digest, size.map({ $0 == bytes.count }) ?? true else {
            throw RPCError(
                .integrityFailure, reason: .digestMismatch,
                message:
                    "the data a descriptor of \(ref) embeds is not \(digest) of \(size.map(String.init) ?? "any") bytes"
            )
        }
    }

    /// `body` over the layer a descriptor embeds (`data`), as the original
    /// reads it, before it asks the registry: its bytes checked against
    /// `digest` (and `size`, when the descriptor gives one) first, then
    /// decoded as a download would be, off the task pool.
    func readEmbedded<T: Sendable>(
        _ bytes: [UInt8], digest: Digest, size: Int?, of ref: ImageReference, budget: ReadBudget,
        compressionAs reader: Compression.Reader, _ body: @escaping @Sendable (any ByteStream) throws -> T
    ) async throws -> T {
        try Self.checkEmbedded(bytes, digest: digest, size: size, of: ref)
        return try await Self.offThePool(MemoryShare.current) {
            try body(
                Compression.openDecoded(
                    MemoryByteStream(bytes), prefix: Array(bytes.prefix(8)), budget: budget, as: reader))
        }.get()
    }

    /// `withDownloadedBlob` for a blob nothing tells the size of before it
    /// comes (`blob_files` names a digest alone): read as it downloads once
    /// `followedBlobBytes` of it have come, and once downloaded when it
    /// ends before that (a small blob takes no thread of its own).
    func withBlobReadAsItDownloadsWhenLarge<T: Sendable>(
        _ ref: ImageReference, budget: ReadBudget, compressionAs reader: Compression.Reader,
        _ body: @escaping @Sendable (any ByteStream) throws -> T
    ) async throws -> T {
        let download = startDownload(ref, size: nil)
        let large = await withTaskCancellationHandler {
            await download.progress.reached(Self.followedBlobBytes)
        } onCancel: {
            download.cancel()
        }
        if Task.isCancelled {
            await download.abandon()
            throw CancellationError()
        }
        return try await readBlob(
            ref, size: nil, ahead: download, followsDownload: large, budget: budget, compressionAs: reader, body
        ).value
    }

    /// `withDownloadedBlob`, for a blob whose download may be under way
    /// already (`ahead`), and that starts downloading `below` (the next
    /// layer `image_files` reads) once its own download is done, while
    /// `body` still reads it.
    ///
    /// `body` runs off the task pool, so a large layer does not hold up the
    /// requests being served meanwhile, with the task's
    /// `MemoryShare.current`; cancelling the task stops it within one
    /// chunk. When the caller says the blob is large (`followsDownload`:
    /// `image_files`'s layers), it reads the download as it is written
    /// (`FollowedDownload`), on a thread of its own, and what it makes
    /// counts only if the file it read is the one verified: when the
    /// download failed, the failure is the answer, however `body` ended;
    /// when another attempt's file was verified (a retry, a mirror) or
    /// `body` lost the thread, `body` runs again on the verified file.
    func readBlob<T: Sendable>(
        _ ref: ImageReference, size: Int?, ahead: BlobDownload? = nil,
        then below: (ref: ImageReference, size: Int?)? = nil, followsDownload: Bool = false, budget: ReadBudget,
        compressionAs reader: Compression.Reader, _ body: @escaping @Sendable (any ByteStream) throws -> T
    ) async throws -> (value: T, below: BlobDownload?) {
        let share = MemoryShare.current
        /// `body` over the verified blob's whole file, `below` started meanwhile.
        func readDownloaded(_ blob: VerifiedBlob, streamed: Result<T, any Error>?) async throws -> (T, BlobDownload?) {
            defer { blob.discard() }
            let next = startDownloadIfRoom(below)
            let result =
                if let streamed { streamed } else {
                    await Self.offThePool(share) {
                        try body(Compression.openDecoded(path: blob.file.path, budget: budget, as: reader))
                    }
                }
            switch result {
            case .success(let value): return (value, next)
            case .failure(let error):
                await next?.abandon()
                throw error
            }
        }
        /// The verified blob: the download started ahead, or one made now,
        /// telling `progress`.
        func downloaded(_ progress: DownloadProgress?) async throws -> VerifiedBlob {
            if let ahead { return try await ahead.blob }
            let blob = try await source.fetchBlob(
                ref, directory: downloads, limit: size ?? RegistryClient.maxBlobBytes, progress: progress)
            progress?.end(verified: blob.file.path)
            return blob
        }
        // Only what the caller says is large is read as it downloads
        // (`image_files`'s layers of `followedBlobBytes` or more): a thread
        // of its own costs a small blob more than it gains (500
        // `ec.oci.blob` calls on blobs of 0.5 KB took 16% more CPU when
        // each was followed), and a blob named by its digest alone says
        // nothing of its size until it comes.
        guard followsDownload else {
            return try await withTaskCancellationHandler {
                let blob: VerifiedBlob
                do {
                    blob = try await downloaded(nil)
                } catch let error as RegistryError where error.reason == .downloadLimit && ahead != nil {
                    return try await readBlob(
                        ref, size: size, then: below, budget: budget, compressionAs: reader, body)
                }
                return try await readDownloaded(blob, streamed: nil)
            } onCancel: {
                budget.cancel()
                ahead?.cancel()
            }
        }
        let progress = ahead?.progress ?? DownloadProgress()
        return try await withTaskCancellationHandler {
            let followed = FollowedDownload(progress)
            async let streamed = Self.onThreadOfItsOwn(share) {
                try body(Compression.openDecoded(followed, prefix: followed.peek(8), budget: budget, as: reader))
            }
            let blob: VerifiedBlob
            do {
                blob = try await downloaded(progress)
            } catch let error as RegistryError where error.reason == .downloadLimit && ahead != nil {
                // Started ahead, it found no room: downloaded now, as it
                // would have been, the file before it gone.
                _ = await streamed
                return try await readBlob(
                    ref, size: size, then: below, followsDownload: true, budget: budget, compressionAs: reader, body)
            } catch {
                progress.end(verified: nil)
                _ = await streamed
                throw error
            }
            let read = await streamed
            return try await readDownloaded(
                blob, streamed: followed.followed(verifiedPath: blob.file.path) ? read : nil)
        } onCancel: {
            budget.cancel()
            progress.cancel()
            ahead?.cancel()
        }
    }

    /// The least a layer's manifest must say it holds for `image_files` to
    /// read it while it downloads, and what a blob `blob_files` reads must
    /// have downloaded for it to be read so: 1 MiB.
    static let followedBlobBytes = 1 << 20

    /// Runs a following reader's `work` on an OS thread of its own, with
    /// `share` as its `MemoryShare.current`; nil when no thread could be
    /// started, or `FollowedDownload.readers` run already. A reader that
    /// waits for a download does not hold one of the dispatch queues'
    /// threads, which are bounded, and which the download's own work may be
    /// waiting for (the disk cache reads off the task pool).
    private static func onThreadOfItsOwn<T: Sendable>(
        _ share: MemoryShare?, _ work: @escaping @Sendable () throws -> T
    ) async -> Result<T, any Error>? {
        guard FollowedDownload.readers.admit() else { return nil }
        let handedOver = HandedOverWork(share, work)
        let result: Result<T, any Error>? = await withCheckedContinuation { continuation in
            let started = startThreadIfPossible {
                let result = handedOver.run()
                FollowedDownload.readers.leave()
                continuation.resume(returning: result)
            }
            if !started {
                FollowedDownload.readers.leave()
                continuation.resume(returning: nil)
            }
        }
        SanitizerHandOff.acquire(handedOver)
        return result
    }

    /// Runs `work` on the queue for blocking archive work, with `share` as
    /// its `MemoryShare.current`.
    private static func offThePool<T: Sendable>(
        _ share: MemoryShare?, _ work: @escaping @Sendable () throws -> T
    ) async -> Result<T, any Error> {
        let handedOver = HandedOverWork(share, work)
        let result = await withCheckedContinuation { continuation in
            blockingWork.async { continuation.resume(returning: handedOver.run()) }
        }
        SanitizerHandOff.acquire(handedOver)
        return result
    }

    /// Starts downloading the blob `ref` names (at most `size` bytes when
    /// the manifest says).
    func startDownload(_ ref: ImageReference, size: Int?) -> BlobDownload {
        BlobDownload { [source, downloads] progress in
            try await source.fetchBlob(
                ref, directory: downloads, limit: size ?? RegistryClient.maxBlobBytes, progress: progress)
        }
    }

    /// `startDownload` of `below` while the caller reads another blob. Nil
    /// when there is none, or when the downloads in flight plainly have no
    /// room for it beside the file being read: a refused download is a
    /// request made for nothing. It starts at its turn then, as it would
    /// have, once that file is gone (and so does one refused after all:
    /// `readBlob`).
    func startDownloadIfRoom(_ below: (ref: ImageReference, size: Int?)?) -> BlobDownload? {
        guard let below else { return nil }
        if let budget = source.downloadBudget, let size = below.size, size > budget.limit - budget.heldBytes {
            return nil
        }
        return startDownload(below.ref, size: below.size)
    }

    /// Where blocking archive work runs.
    private static let blockingWork = DispatchQueue(label: "ocirpc.archive", attributes: .concurrent)

    /// A value derived from content named by digest in `ref`'s repository,
    /// cached under `kind`/`name` (in memory, and in the derived-result
    /// store when there is one) and computed once for concurrent callers.
    func derived(
        _ kind: String, _ name: String, for ref: ImageReference,
        _ compute: @escaping @Sendable () async throws -> JSONValue
    ) async throws -> JSONValue {
        let key = ContentCache.Key(kind, name)
        if let cached = cache.value(key, as: JSONValue.self) { return cached }
        return try await valueFlights.run(kind + "|" + name) { [self] in
            if let derivedStore {
                // A blocked or unroutable name stays refused whatever was kept for it.
                try source.refuseIfUnroutable(ref)
                if let kept = derivedStore.result(kind, name) {
                    let cost = Self.cost(kept)
                    try MemoryShare.current?.take(cost)
                    cache.store(kept, cost: cost, for: key)
                    return kept
                }
            }
            let value = try await compute()
            cache.store(value, cost: Self.cost(value), for: key)
            derivedStore?.store(kind, name, value)
            return value
        }
    }

    // MARK: - Helpers

    private func manifestKey(_ ref: ImageReference, _ digest: Digest) -> ContentCache.Key {
        ContentCache.Key("manifest", String(joining: ref.name, "@", digest.description))
    }

    private func imageManifestKey(_ ref: ImageReference, _ digest: Digest, _ platform: Platform) -> ContentCache.Key {
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

/// What a manifest was read as: an image's, or an index naming its child.
private enum TopManifest<T> {
    case image(T)
    case index(child: IndexEntry)
}

/// The entry of an index that an image is read through.
private struct IndexEntry: Sendable {
    let digest: Digest
    /// The size it gives (nil when none, or negative).
    let size: Int?
    /// The media type it gives, which the original reads the manifest as.
    let mediaType: String
    /// The manifest it embeds (`data`, base64; text Go would refuse was
    /// refused with the index); nil when it embeds none.
    let embedded: [UInt8]?

    /// The entry `node`, naming `digest`; the bytes it embeds are taken
    /// from `share` as they are decoded (the text, and what it decodes to).
    init(_ node: JSONTape.Node, digest: Digest, takingFrom share: MemoryShare?) throws(MemoryLimitExceeded) {
        self.digest = digest
        size = ContentService.size(of: node)
        mediaType = node.member("mediaType")?.stringText ?? ""
        embedded = try node.member("data").flatMap { data throws(MemoryLimitExceeded) in
            try ContentService.embeddedBytes(data, takingFrom: share)
        }
    }

    /// The manifest it embeds, checked against its digest and size (as
    /// the original checks it), as the entry's media type; nil when it
    /// embeds none.
    /// Not inlined: inlined into `withImageManifest`, its typed error made
    /// the compiler crash splitting that coroutine, built for the thread
    /// sanitizer (Swift 6.3.1, release).
    @inline(never)
    func embeddedManifest(of ref: ImageReference) throws(RPCError) -> FetchedManifest? {
        guard let embedded else { return nil }
        try ContentService.checkEmbedded(embedded, digest: digest, size: size, of: ref)
        return FetchedManifest(bytes: embedded, mediaType: mediaType, digest: digest)
    }
}
