import Reasons
import Archive
import FoundationEssentials
import Glibc
import JSON
import Locking
import Memory
import RPCDispatch
import Registry

/// The ten `ec.oci.*` methods: declared params, and handlers that parse
/// the ref, ask the content service and map failures to contract errors.
struct MethodTable: Sendable {
    let service: ContentService
    let maxConcurrency: Int
    let references = ReferenceCache()

    private static let ref = ParamSpec("ref", .string)
    private static let paths = ParamSpec("paths", .stringArray, wrongTypeReason: .invalidPaths)
    private static let platform = ParamSpec("platform", .string, required: false, positional: false)

    var specs: [MethodSpec] {
        [
            method(
                "ec.oci.blob", [Self.ref, ParamSpec("encoding", .string, required: false, positional: false)],
                holdsMemory: true
            ) {
                params, ref, text in
                let encoding = try params.optionalString("encoding") ?? "utf8"
                guard encoding == "utf8" || encoding == "base64" else {
                    throw RPCError.invalidParams(reason: .invalidEncoding, "encoding must be \"utf8\" or \"base64\"")
                }
                _ = try ContentService.requireDigest(ref)
                let bytes = try await service.blob(ref)
                // The answer is a copy of the blob (a third larger in base64).
                try MemoryShare.current?.take(encoding == "base64" ? bytes.count / 3 * 4 + 4 : bytes.count)
                if encoding == "base64" { return .string(Data(bytes).base64EncodedString()) }
                guard let string = String(validating: bytes, as: UTF8.self) else {
                    throw RPCError(
                        .unsupportedContent, reason: .binaryContent,
                        message: "blob \(text) is not UTF-8 text (ask with encoding \"base64\")")
                }
                return .string(string)
            },
            method("ec.oci.parsed_blob", [Self.ref], holdsMemory: true) { _, ref, text in
                let digest = try ContentService.requireDigest(ref)
                return try await service.derived("parsed_blob", "\(ref.name)@\(digest)", for: ref) { [service] in
                    let bytes = try await service.blob(ref)
                    // Kept as its compact text: a tree of a value-dense
                    // blob would hold twelve times its size. The text is
                    // written into a buffer, then copied out, with the
                    // places of its keys (to keep a repeated key once).
                    // Read as the original reads it (Go's `encoding/json`):
                    // text that is not Unicode is U+FFFD, not a failure.
                    try MemoryShare.current?.take(JSONParser.compactionBytes(for: bytes, reading: .asGo))
                    do throws(JSONParseError) {
                        return try JSONParser.compacted(bytes, reading: .asGo)
                    } catch {
                        throw Self.parsedBlobRefusal(bytes, error, blob: text)
                    }
                }
            },
            method("ec.oci.blob_files", [Self.ref, Self.paths], holdsMemory: true) { params, ref, _ in
                let digest = try ContentService.requireDigest(ref)
                let paths = try params.strings("paths", reason: .invalidPaths)
                guard !paths.isEmpty else { return [:] }
                let name = "\(ref.name)@\(digest)|" + Self.pathsKey(paths)
                return try await service.derived("blob_files", name, for: ref) { [service] in
                    try await Self.blobFiles(service, ref, paths: paths)
                }
            },
            method("ec.oci.descriptor", [Self.ref]) { _, ref, _ in
                try await service.descriptor(ref)
            },
            method("ec.oci.image_manifest", [Self.ref, Self.platform]) { params, ref, _ in
                try await service.imageManifestResult(ref, platform: try platform(params))
            },
            imageManifests,
            method("ec.oci.image_files", [Self.ref, Self.paths], holdsMemory: true) { params, ref, _ in
                let digest = try ContentService.requireDigest(ref)
                let paths = try params.strings("paths", reason: .invalidPaths)
                guard !paths.isEmpty else { return [:] }
                let platform = service.defaultPlatform
                let name = "\(ref.name)@\(digest)|\(platform)|" + Self.pathsKey(paths)
                return try await service.derived("image_files", name, for: ref) { [service] in
                    try await Self.imageFiles(service, ref, platform: platform, paths: paths)
                }
            },
            method("ec.oci.image_index", [Self.ref]) { _, ref, _ in
                let fetched = try await service.manifest(ref)
                return try service.shaping(fetched, ref: ref, answer: true) { document in
                    guard try ManifestKind.of(fetched, document, ref: ref) == .index else {
                        throw RPCError(
                            .unsupportedContent, reason: .unexpectedMediaType,
                            message: "\(ref) is \(fetched.mediaType), not an image index")
                    }
                    return try Shapes.index(document)
                }
            },
            method("ec.oci.image_tag_refs", [Self.ref]) { _, ref, _ in
                let digest = try await service.digest(of: ref)
                let tags = ["sig", "att", "sbom"].map { "\(digest.algorithm.rawValue)-\(digest.hex).\($0)" }
                // A tag that cannot be checked fails the call (fail closed).
                let exists = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                    for (i, tag) in tags.enumerated() {
                        group.addTask { [service] in (i, try await service.tagExists(ref.tagged(tag))) }
                    }
                    var exists = [Bool](repeating: false, count: tags.count)
                    for try await (i, found) in group { exists[i] = found }
                    return exists
                }
                try Task.checkCancellation()
                return .array(tags.indices.filter { exists[$0] }.map { .string("\(ref.name):\(tags[$0])") })
            },
            method("ec.oci.image_referrers", [Self.ref]) { _, ref, _ in
                try await service.referrersAnswer(ref)
            },
        ]
    }

    /// Why `parsed_blob` answers no value for `bytes`, which the reader
    /// refused with `error`. Nesting past the 512 levels clients read by
    /// recursion is a limit of the server's (`json_too_deep`) when Go's
    /// `encoding/json`, the original's reader, reads the blob (10,000
    /// levels; read again that deep only then, in the memory already
    /// taken): `not_json` there would be the original's own answer to a
    /// blob it cannot read, and a policy that lets such a call be
    /// undefined would pass a blob made to be refused.
    static func parsedBlobRefusal(_ bytes: [UInt8], _ error: JSONParseError, blob text: String) -> RPCError {
        if error.isNestingLimit,
            (try? JSONParser.compacted(bytes, maxDepth: JSONParser.goMaxDepth, reading: .asGo)) != nil
        {
            return RPCError(
                .limitExceeded, reason: .jsonTooDeep,
                message: "blob \(text) is JSON nested deeper than \(JSONParser.defaultMaxDepth) levels")
        }
        return RPCError(.unsupportedContent, reason: .notJSON, message: "blob \(text) is not JSON")
    }

    /// `ec.oci.image_manifests`, streaming with a `partialResultToken`.
    private var imageManifests: MethodSpec {
        MethodSpec(
            "ec.oci.image_manifests",
            params: [
                ParamSpec("refs", .stringArray),
                ParamSpec("partialResultToken", .stringOrNumber, required: false, positional: false),
                Self.platform,
            ],
            // Without a token, the answers are kept until the last one.
            holdsMemory: true
        ) { [service, maxConcurrency, references] params, context in
            let refs = try params.strings("refs")
            let platform = try platform(params)
            let token = params["partialResultToken"].flatMap { $0.isNull ? nil : $0 }
            let fetcher = BatchManifestFetcher(service: service, maxConcurrency: maxConcurrency, references: references)
            // By place among the distinct refs (there are at most as many).
            let outcomes = Locked([JSONValue?](repeating: nil, count: token == nil ? refs.count : 0))
            // Each answer kept is taken from the call's share: a registry may
            // make each one 16 MiB (Shapes.maxAnswerBytes), and a batch may
            // name thousands. Past it the batch stops. A ref whose manifest
            // the budget had no room for stops it too, as does one refused
            // by any limit the calls in flight share: left out, it would
            // read as a ref that failed.
            let share = MemoryShare.current
            let refusal = Locked<RPCError?>(nil)
            // A client reading slowly holds the workers back.
            let notifications = context.notifications
            let waitForRoom: (@Sendable () async -> Void)?
            if token == nil {
                waitForRoom = nil
            } else {
                waitForRoom = { await notifications.waitForRoom() }
            }
            let distinct = await fetcher.run(refs, platform: platform, waitForRoom: waitForRoom) {
                place, ref, outcome in
                if let token {
                    let value: JSONValue
                    switch outcome {
                    case .success(let manifest): value = ["ref": .string(ref), "manifest": manifest]
                    case .failure(let error): value = ["ref": .string(ref), "error": error.json]
                    }
                    context.notifications.progress(token: token, value: value)
                } else {
                    switch outcome {
                    case .success(let manifest):
                        do throws(MemoryLimitExceeded) {
                            try share?.take(manifest.memoryFootprint)
                        } catch {
                            refusal.withLock { $0 = .memoryLimit(error) }
                            return false
                        }
                        outcomes.withLock { $0[place] = manifest }
                    case .failure(let error) where error.reason.isHeldByCallsInFlight:
                        refusal.withLock { $0 = error }
                        return false
                    case .failure:
                        break
                    }
                }
                return true
            }
            try Task.checkCancellation()
            if let refusal = refusal.withLock({ $0 }) { throw refusal }
            guard token == nil else { return [:] }
            let found = outcomes.withLock { $0 }
            var result = JSONObject()
            for (place, ref) in distinct.enumerated() {
                if let manifest = found[place] { result.append(ref, manifest) }
            }
            return .object(result)
        }
    }

    /// The paths asked for, as a cache key part: their sorted set as a JSON
    /// array, so no two different sets share a key (paths may hold any
    /// character, separators included). Told apart and sorted by their
    /// bytes (`ArchiveName`), as the methods tell them apart: a set of
    /// `café` spelled two ways is two paths.
    static func pathsKey(_ paths: [String]) -> String {
        JSONValue.array(Set(paths.map(ArchiveName.held)).sorted().map { .string(ArchiveName.readable($0)) }).jsonText
    }

    /// Reads the blob's tar, again for links (`BlobFiles`).
    private static func blobFiles(_ service: ContentService, _ ref: ImageReference, paths: [String]) async throws
        -> JSONValue
    {
        let budget = service.makeBudget()
        var reader = BlobFiles(paths: Set(paths), maxEntryBytes: ContentService.maxEntryBytes)
        /// Reads the blob into the reader through `step`; the first pass
        /// reads a large blob as it downloads.
        func read(
            firstPass: Bool = false, _ step: @escaping @Sendable (inout BlobFiles, TarReader) throws -> Void
        ) async throws {
            try Task.checkCancellation()
            let body: @Sendable (any ByteStream) throws -> BlobFiles = { [reader] stream in
                var next = reader
                try step(&next, TarReader(stream))
                return next
            }
            reader =
                if firstPass {
                    try await service.withBlobReadAsItDownloadsWhenLarge(
                        ref, budget: budget, compressionAs: .runtimes, body)
                } else {
                    try await service.withDownloadedBlob(ref, budget: budget, compressionAs: .runtimes, body)
                }
        }
        try await read(firstPass: true) { try $0.read($1) }
        if reader.needsNamespace { try await read { try $0.readNamespace($1) } }
        try reader.startFollowingLinks()
        while reader.needsPass {
            try await read { try $0.applyFollowingLinks($1) }
            try reader.finishPass()
        }
        return reader.result
    }

    /// Reads the image's layers, top one first, through the flattener.
    private static func imageFiles(
        _ service: ContentService, _ ref: ImageReference, platform: Platform, paths: [String]
    ) async throws -> JSONValue {
        let (layers, config) = try await service.imageLayers(ref, platform: platform)
        // Each layer is checked against what the config says it holds, as
        // the runtimes check it before unpacking it (`LayerDigest`).
        var diffIDs: [Digest]?
        if let config { diffIDs = try await service.diffIDs(of: config, ref: ref, platform: platform) }
        // A config whose diff_ids are not one for each layer fails as a
        // layer that is not its diff_id fails: the original, which never
        // reads the config, answers, so the refusal must not read as
        // content neither can read (which a policy may let be undefined).
        if let diffIDs, diffIDs.count != layers.count {
            throw RPCError(
                .integrityFailure, reason: .digestMismatch,
                message:
                    "\(ref) lists \(layers.count) layers and its config \(diffIDs.count) diff_ids: runtimes refuse to unpack it"
            )
        }
        // One budget for every layer of the request.
        let budget = service.makeBudget()
        // The bytes the layers' descriptors embed, read before the registry
        // is asked, as the original reads them: decoded in one pass over the
        // manifest, and kept for the passes that follow links.
        let embedded = try await service.embeddedBytes(
            ref, platform: platform,
            of: Set(
                layers.indices.filter { layers[$0].isEmbedded }.map { ContentService.EmbeddingDescriptor.layer($0) }))
        let topFirst = Array(layers.reversed())
        var flattener = LayerFlattener(paths: paths, maxEntryBytes: ContentService.maxEntryBytes)
        /// Reads the layer at `depth` into the flattener through `step`,
        /// and checks its decompressed bytes against `expected`; downloads
        /// `below` meanwhile (`ContentService.readBlob`) and returns it.
        @discardableResult
        func read(
            _ depth: Int, ahead: BlobDownload? = nil, then below: ContentService.ImageLayer? = nil,
            expected: Digest? = nil, _ step: @escaping @Sendable (inout LayerFlattener, TarReader) throws -> Void
        ) async throws -> BlobDownload? {
            if Task.isCancelled {
                await ahead?.abandon()
                throw CancellationError()
            }
            let layer = topFirst[depth]
            let body: @Sendable (any ByteStream) throws -> LayerFlattener = { [flattener] stream in
                var next = flattener
                guard let expected else {
                    try step(&next, TarReader(stream))
                    return next
                }
                let hashed = LayerDigest(stream, algorithm: expected.algorithm)
                try step(&next, TarReader(hashed))
                try LayerDigest.check(
                    try hashed.digestToTheEnd(), is: expected, layer: topFirst.count - 1 - depth, of: ref)
                return next
            }
            let position = topFirst.count - 1 - depth
            // The original reads an embedded layer without asking the
            // registry; it is never downloaded ahead (`below`).
            if let bytes = embedded[.layer(position)] {
                await ahead?.abandon()
                flattener = try await service.readEmbedded(
                    bytes, digest: layer.digest, size: layer.size, of: ref, budget: budget, compressionAs: .runtimes,
                    body)
                return nil
            }
            let read: (value: LayerFlattener, below: BlobDownload?)
            do {
                read = try await service.readBlob(
                    ref.pinned(to: layer.digest), size: layer.size, ahead: ahead,
                    then: below.flatMap { $0.isEmbedded ? nil : (ref.pinned(to: $0.digest), $0.size) },
                    followsDownload: (layer.size ?? 0) >= ContentService.followedBlobBytes, budget: budget,
                    compressionAs: .runtimes, body)
            } catch let error as RegistryError where error.kind == .notFound && layer.namesElsewhere {
                throw foreignLayer(layer, position: position, error)
            }
            flattener = read.value
            return read.below
        }
        /// A layer the registry does not hold, whose descriptor names URLs
        /// where its bytes are and embeds none: the original reads them from
        /// there, and runtimes pull a foreign layer from its URLs. Never
        /// `blob_unknown`, the registry's word that it is not there, which a
        /// policy may take as absence: the image's files would pass it.
        func foreignLayer(_ layer: ContentService.ImageLayer, position: Int, _ error: RegistryError) -> RPCError {
            RPCError(
                .unsupportedContent, reason: .foreignLayer,
                message:
                    "layer \(position) of \(ref) (\(layer.digest)) is not in the registry (\(error.message)) and its descriptor names URLs where it is, which the server does not fetch"
            )
        }
        // Every layer is read once, top first, as it downloads when it is
        // of `ContentService.followedBlobBytes` or more. Once a
        // layer is downloaded, the layer below it downloads while the rest
        // of it is read: on a fast network decompressing is the slower
        // part, on a slow one the download. One download at a time, so the
        // one ahead never takes the room the layer being read needs.
        var ahead: BlobDownload?
        for depth in topFirst.indices {
            let below = depth + 1 < topFirst.count ? topFirst[depth + 1] : nil
            ahead = try await read(
                depth, ahead: ahead, then: below,
                expected: diffIDs?[topFirst.count - 1 - depth]
            ) { try $0.apply($1) }
        }
        // Links lead on to files read in further passes, each from the
        // topmost layer it needs down to the last it needs.
        try flattener.startFollowingLinks()
        while let first = flattener.nextPassDepth {
            for depth in first..<topFirst.count where !flattener.passIsDecided {
                try await read(depth) { try $0.applyFollowingLinks($1, depth: depth) }
            }
            try flattener.finishPass()
        }
        return try flattener.result()
    }

    /// A method taking a ref first: parses it (`invalid_reference`) and maps
    /// every failure of `body` to the contract's error with the ref.
    /// `holdsMemory`: the method holds content sized by what a registry
    /// sent (`MethodSpec.holdsMemory`).
    private func method(
        _ name: String, _ params: [ParamSpec], holdsMemory: Bool = false,
        _ body: @escaping @Sendable (Params, ImageReference, String) async throws -> JSONValue
    ) -> MethodSpec {
        MethodSpec(name, params: params, holdsMemory: holdsMemory) { [references] params, _ in
            let text = try params.string("ref")
            let ref = try references.parse(text)
            do {
                return try await body(params, ref, text)
            } catch {
                throw ErrorMapping.rpcError(error, ref: text)
            }
        }
    }

    private func platform(_ params: Params) throws(RPCError) -> Platform {
        guard let text = try params.optionalString("platform") else { return service.defaultPlatform }
        return try Platform(text)
    }
}
