import Glibc
import Locking
import Registry

/// What this process knows of one repository's journal file: the records
/// read so far, indexed, and how far it has read. Whatever is not here is
/// looked for again in the file (another process may have appended it).
struct JournalIndex: Sendable {
    /// The file read (device and inode): a journal replaced on disk is read
    /// again from its start.
    struct FileIdentity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64

        init(_ status: stat) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
        }
    }

    /// A manifest's media type and where its bytes are in the file.
    struct Manifest: Sendable {
        let mediaType: String
        let body: Range<Int>
    }

    /// What a tag named, and when that was fetched.
    struct Tag: Sendable {
        let digest: Digest
        let fetchedAt: Double
    }

    var file: FileIdentity?
    /// Bytes of the file read as whole records.
    var consumed = 0
    /// About how many of those bytes are records a later one replaced (a
    /// tag's earlier answers, a manifest or blob recorded again): what
    /// writing the journal anew would save.
    var replacedBytes = 0
    var manifests: [Digest: Manifest] = [:]
    var blobs: Set<Digest> = []
    var tags: [String: Tag] = [:]
    /// When this process last refreshed the file's time for a hit.
    var touchedAt = -Double.infinity

    init(file: FileIdentity? = nil) { self.file = file }

    /// Takes in `scan`'s records; a tag keeps its latest answer.
    mutating func apply(_ scan: JournalRecord.Scan) {
        apply(scan.records, consumed: scan.consumed)
    }

    /// Takes in `records`, read or appended as the next `consumed` bytes.
    mutating func apply(_ records: [JournalRecord], consumed bytes: Int) {
        // Room made once for a file read whole, not grown (and rehashed) step by step.
        if records.count > 16 {
            var (manifestCount, tagCount) = (0, 0)
            for record in records {
                switch record {
                case .manifest: manifestCount += 1
                case .tag: tagCount += 1
                case .blob: break
                }
            }
            manifests.reserveCapacity(manifests.count + manifestCount)
            tags.reserveCapacity(tags.count + tagCount)
        }
        for record in records {
            switch record {
            case .manifest(let digest, let mediaType, let body):
                if manifests.updateValue(Manifest(mediaType: mediaType, body: body), forKey: digest) != nil {
                    replacedBytes += Self.recordBytes(digest, mediaType.utf8.count + body.count)
                }
            case .blob(let digest):
                if !blobs.insert(digest).inserted { replacedBytes += Self.recordBytes(digest, 0) }
            case .tag(let reference, let digest, let fetchedAt):
                if let known = tags[reference] {
                    replacedBytes += Self.recordBytes(digest, reference.utf8.count + 24)
                    if known.fetchedAt > fetchedAt { continue }
                }
                tags[reference] = Tag(digest: digest, fetchedAt: fetchedAt)
            }
        }
        consumed += bytes
    }

    /// About the size of a record of `digest` and `fields` more bytes:
    /// its header and separators counted as 20.
    private static func recordBytes(_ digest: Digest, _ fields: Int) -> Int {
        20 + digest.description.utf8.count + fields
    }
}

/// One repository's journal: its file and this process's index of it,
/// behind a lock (reads and appends of one repository take turns in a
/// process; other repositories are not held up).
final class Journal: Sendable {
    let path: String
    let index = Locked(JournalIndex())
    /// The file kept open for reading bodies, and when it was opened or
    /// last found to be the file at `path`.
    let reader = Locked<(file: OpenJournalFile, checkedAt: UInt64)?>(nil)
    /// The file kept open for appending, likewise. Its lock also makes
    /// this process's appends to the journal take turns: where each landed
    /// (read from the kept file's offset after writing it) is then known,
    /// and taken into the index without reading the file back.
    let appender = Locked<(file: OpenJournalFile, checkedAt: UInt64)?>(nil)

    init(path: String) { self.path = path }
}

/// A journal file kept open for reading or appending: a hit costs one
/// `pread`, not an open, a stat, a read and a close, and an append one
/// `write` and two `lseek`. Closed when the last user lets it go (a
/// replaced file is read to the end of the reads under way).
final class OpenJournalFile: Sendable {
    let fd: Int32
    let identity: JournalIndex.FileIdentity
    /// The count of files kept open, shared by a cache's journals; nil for
    /// a file opened for one use.
    private let openCount: Locked<Int>?

    /// Takes `fd` (the file `identity`), counted in `openCount`; nil, with
    /// `fd` left to the caller, when `limit` files are kept open already.
    init?(fd: Int32, identity: JournalIndex.FileIdentity, openCount: Locked<Int>, limit: Int) {
        let admitted = openCount.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
        guard admitted else { return nil }
        self.fd = fd
        self.identity = identity
        self.openCount = openCount
    }

    /// Takes `fd` (the file `identity`) for one use, not counted: closed
    /// when let go.
    init(oneUse fd: Int32, identity: JournalIndex.FileIdentity) {
        self.fd = fd
        self.identity = identity
        self.openCount = nil
    }

    deinit {
        close(fd)
        openCount?.withLock { $0 -= 1 }
    }
}
