import FoundationEssentials
import Glibc
import Registry

extension DiskCache {
    /// Where downloads go when the cache is on: beside the content, so a
    /// verified download is kept by a hard link, without a copy.
    public var downloads: URL { URL(fileURLWithPath: temporary, isDirectory: true) }

    /// The blob `digest` names, if `repository` was seen to hold it, as a
    /// file of the caller's own (a hard link under the cache's temporary
    /// directory, for the caller to `discard()`), after every byte of it
    /// was hashed and matched `digest`. Nil when absent, larger than
    /// `limit`, or damaged (then deleted).
    ///
    /// The bytes are read once here, in blocks; the hash is checked before
    /// anyone reads a byte of the answer.
    public func blob(_ digest: Digest, repository: String, limit: Int) -> VerifiedBlob? {
        let journal = journal(repository)
        guard lookUp(journal, { $0.blobs.contains(digest) ? true : nil }) != nil else {
            count { $0.misses += 1 }
            return nil
        }
        let content = contentPath(digest)
        // A name of our own for the same file: an eviction or a replacement
        // of `content` meanwhile leaves this one whole.
        let link = temporary + "/read-\(getpid())-\(UUID().uuidString)"
        guard Glibc.link(content, link) == 0 else {
            if errno != ENOENT { failed("link \(content)", errno) }
            count { $0.misses += 1 }
            return nil
        }
        switch hashFile(link, algorithm: digest.algorithm, limit: limit, touch: true) {
        case .hashed(let size, let actual) where actual == digest:
            touchIfDue(journal)
            count { $0.hits += 1 }
            return VerifiedBlob(file: URL(fileURLWithPath: link), size: size, digest: digest)
        case .hashed, .notOurs:
            unlink(link)
            return missDamaged(content)
        case .tooLarge, .unreadable:
            // Over the size asked for is a miss, not damage: the registry
            // then says what it says of that size.
            unlink(link)
            count { $0.misses += 1 }
            return nil
        }
    }

    /// Counts (and warns once of) a download the cache directory could not
    /// take, made again elsewhere by the caller.
    public func downloadFailed() {
        failed("download into \(temporary)", error: "the download could not be written")
    }

    /// Keeps `blob` (verified by whoever fetched it) by a hard link to its
    /// file, and that `repository` holds it. A blob downloaded outside the
    /// cache's file system is not kept.
    public func storeBlob(_ blob: VerifiedBlob, repository: String) {
        let staged = temporary + "/keep-\(getpid())-\(UUID().uuidString)"
        guard Glibc.link(blob.file.path, staged) == 0 else {
            if errno != EXDEV { failed("link \(blob.file.path)", errno) }
            return
        }
        // Replaces a file found damaged, atomically.
        guard rename(staged, contentPath(blob.digest)) == 0 else {
            failed("keep blob \(blob.digest)", errno)
            unlink(staged)
            return
        }
        count { $0.writes += 1 }
        append(to: journal(repository)) { index in
            var records = JournalRecord.Appending()
            if !index.blobs.contains(blob.digest) { records.blob(blob.digest) }
            return records
        }
    }

    /// What hashing a file found.
    private enum HashedFile {
        case hashed(size: Int, digest: Digest)
        /// A link or a FIFO where content should be.
        case notOurs
        case tooLarge
        case unreadable
    }

    /// Hashes the file at `path` with `algorithm`, refusing one over
    /// `limit` bytes.
    private func hashFile(_ path: String, algorithm: Digest.Algorithm, limit: Int, touch: Bool) -> HashedFile {
        // Never a link's target, and never waiting on a FIFO: only a
        // regular file of the cache's own is read.
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ELOOP { return .notOurs }
            failed("read \(path)", errno)
            return .unreadable
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            failed("read \(path)", errno)
            return .unreadable
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else { return .notOurs }
        guard Int(status.st_size) <= limit else { return .tooLarge }
        if touch, DiskCacheTrimmer.seconds(status.st_mtim) < Self.now() - DiskCacheTrimmer.touchInterval {
            futimens(fd, nil)
        }
        let hasher = DigestHasher(algorithm)
        var size = 0
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { block.deallocate() }
        while true {
            let n = Glibc.read(fd, block.baseAddress!, block.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                failed("read \(path)", errno)
                return .unreadable
            }
            if n == 0 { break }
            size += n
            // Grown past what it may be: not ours.
            guard size <= limit else { return .tooLarge }
            hasher.update(UnsafeRawBufferPointer(rebasing: block[0..<n]))
        }
        return .hashed(size: size, digest: hasher.finalize())
    }
}
