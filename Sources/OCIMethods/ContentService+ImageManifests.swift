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

// An image's manifest through its index: the layers and config `image_files`
// reads, the entry an index names for the platform (as the original and the
// runtimes pick it), and the `image_manifest` answers kept for them.
extension ContentService {
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
    nonisolated(nonsending) func withImageManifest<T>(
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
