import Archive
import Memory
import Reasons

/// What one `image_files` or `blob_files` call remembers of an archive's
/// entries (their names, symbolic links' targets, their places in a
/// namespace), counted in bytes: against a bound of its own, and taken
/// from the call's memory share as it grows, so that many calls on
/// archives of millions of entries hold no more together than the memory
/// budget (`--max-memory-bytes`). Taken until the call ends.
struct RememberedEntries {
    /// What one call may remember, at most.
    static let maxBytes = 512 << 20
    /// What remembering an entry costs besides its name and a symbolic
    /// link's target: its record in the layer being read, its node in the
    /// namespace, and the room the tables holding them grow into. Measured
    /// on archives of 400,000 to 1.6 million entries of 1-20 byte names,
    /// flat and nested: 190-330 bytes an entry.
    static let entryOverheadBytes = 384

    /// The bound, in bytes.
    let limit: Int
    /// What is remembered of: "the layers", "the archive".
    private let holder: String
    private let share: MemoryShare?
    /// What is counted so far (and taken from the share).
    private(set) var bytes = 0

    init(of holder: String, limit: Int = RememberedEntries.maxBytes, share: MemoryShare? = MemoryShare.current) {
        self.holder = holder
        self.limit = limit
        self.share = share
    }

    /// Counts one more entry, `nameBytes` of name and target (each at most
    /// `TarReader.maxNameBytes`, so the sum cannot overflow before the
    /// bound stops it); past the bound, or past what the memory budget
    /// has, the call fails (never an entry left out).
    mutating func count(nameBytes: Int) throws(ArchiveError) {
        let cost = nameBytes + Self.entryOverheadBytes
        bytes += cost
        guard bytes <= limit else {
            throw ArchiveError(
                .tooLarge, reason: .archiveTooLarge,
                message: "\(holder) hold more entries than the \(limit) bytes kept for them allow")
        }
        if let share, let refusal = share.refusal(taking: cost) { throw refusal }
    }
}
