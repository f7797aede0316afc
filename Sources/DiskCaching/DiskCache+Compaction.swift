import Glibc
import Registry

extension DiskCache {
    /// A journal at its limit mostly holds answers that later ones replaced:
    /// every fetch of a tag after its TTL appends one. It is written anew
    /// with what it still says (each manifest whose bytes still hash to its
    /// digest, each blob, each tag's latest answer) and `appending`, when
    /// that takes at most half the limit; else the caller starts it over.
    /// Returns whether it was written.
    ///
    /// Another process appending meanwhile appends to the file replaced:
    /// what it appended is missed and fetched again, never misread, as
    /// every process checks which file it read before it believes it.
    func compact(_ journal: Journal, adding appending: JournalRecord.Appending) -> Bool {
        journal.index.withLock { index in
            refresh(&index, journal.path)
            guard let file = index.file, let fd = openForReading(journal, file) else { return false }
            defer { close(fd) }
            var compacted = JournalRecord.Appending()
            for (digest, entry) in index.manifests {
                guard
                    let bytes = readAt(fd, offset: entry.body.lowerBound, count: entry.body.count, path: journal.path),
                    Digest.of(bytes, algorithm: digest.algorithm) == digest
                else { continue }
                compacted.manifest(FetchedManifest(bytes: bytes, mediaType: entry.mediaType, digest: digest))
            }
            for digest in index.blobs { compacted.blob(digest) }
            for (reference, tag) in index.tags { compacted.tag(reference, tag.digest, fetchedAt: tag.fetchedAt) }
            compacted.append(contentsOf: appending)
            guard compacted.bytes.count <= Self.maxJournalBytes / 2,
                let written = writeNew(compacted.bytes, to: journal.path)
            else {
                // Not tried again on every append (a full disk would make
                // each one read and hash the whole journal): only once as
                // many replaced records have come again.
                index.replacedBytes = 0
                return false
            }
            index = JournalIndex(file: JournalIndex.FileIdentity(written))
            index.apply(compacted.records, consumed: compacted.bytes.count)
            count { $0.compactions += 1 }
            return true
        }
    }
}
