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

// Blobs: read whole into memory, or downloaded to a private file and read as
// they arrive; the bytes an image embeds; results derived from them.
extension ContentService {
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
}
