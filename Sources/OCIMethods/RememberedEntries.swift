import Archive
import Memory
import Reasons
import Synchronization

/// What one `image_files` or `blob_files` call remembers of an archive's
/// entries (their names, links' targets, their records in the layer being
/// read, the nodes of the namespaces and path sets they make), counted in
/// bytes: against a bound of its own, and taken from the call's memory
/// share, so that many calls on archives of millions of entries hold no
/// more together than the memory budget (`--max-memory-bytes`). Taken
/// until the call ends.
///
/// The structures that grow with the entries (`PathTrie`,
/// `LayerOverlaps`) add to it as they grow, without failing; the readers
/// check it at every entry (`count(nameBytes:)`) and after every
/// structure's growth for one entry (`check()`), so it passes its bound
/// by at most one entry's nodes before the call fails, and the share by
/// at most `shareStep` until the reader's last check (`check(all:)`).
/// One reader uses it at a time (the reader moves between tasks as it
/// reads layer after layer); its counts are atomic so that it is
/// `Sendable`.
final class RememberedEntries: Sendable {
    /// What one call may remember, at most.
    static let maxBytes = 512 << 20
    /// What remembering an entry costs besides its name, its link's target
    /// and its nodes: its record in the layer being read, and the room the
    /// tables holding them grow into.
    static let entryOverheadBytes = 192
    /// What one node of a namespace costs (`PathTrie`: its place among its
    /// parent's children, its marks and what stands there).
    static let nodeOverheadBytes = 192
    /// What one directory's hash in a layer's path set costs (`LayerOverlaps`).
    static let hashOverheadBytes = 40

    /// The bound, in bytes.
    let limit: Int
    /// What is remembered of, with its verb: "the layers hold".
    private let holder: String
    private let share: MemoryShare?
    private let counted = Atomic<Int>(0)
    /// What is taken from the share so far.
    private let taken = Atomic<Int>(0)

    /// What is counted so far.
    var bytes: Int { counted.load(ordering: .relaxed) }

    init(of holder: String, limit: Int = RememberedEntries.maxBytes, share: MemoryShare? = MemoryShare.current) {
        self.holder = holder
        self.limit = limit
        self.share = share
    }

    /// Adds what a structure grew by; `check()` fails on it later.
    func add(_ count: Int) { counted.add(count, ordering: .relaxed) }

    /// Counts one more entry, `nameBytes` of name and target (each at most
    /// `TarReader.maxNameBytes`, so the sum cannot overflow before the
    /// bound stops it), and checks what is counted.
    func count(nameBytes: Int) throws(ArchiveError) {
        add(nameBytes + Self.entryOverheadBytes)
        try check()
    }

    /// What is taken from the share at once: an entry's few hundred bytes
    /// each would make every entry an update of the budget every call shares.
    static let shareStep = 64 << 10

    /// Fails past the bound, or past what the memory budget has (never an
    /// entry left out); else takes what was added since from the share,
    /// once it is `shareStep` or more, or when `all`.
    func check(all: Bool = false) throws(ArchiveError) {
        let bytes = self.bytes
        guard bytes <= limit else {
            throw ArchiveError(
                .tooLarge, reason: .archiveTooLarge,
                message: "\(holder) more entries than the \(limit) bytes kept for them allow")
        }
        let alreadyTaken = taken.load(ordering: .relaxed)
        guard bytes - alreadyTaken >= (all ? 1 : Self.shareStep) else { return }
        if let share, let refusal = share.refusal(taking: bytes - alreadyTaken) { throw refusal }
        taken.store(bytes, ordering: .relaxed)
    }
}
