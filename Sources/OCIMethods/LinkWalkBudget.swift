import Archive
import Reasons
import Synchronization

/// The names one `image_files` or `blob_files` call may walk through while
/// it resolves paths through symbolic links: where unpacking writes each
/// entry (`PathTrie.placement(of:budget:)`) and what a link leads to
/// (`PathTrie.resolve`). One walk is bounded (40 links, each target at
/// most 4 KiB), but an archive can make every one of a million entries
/// walk 40 targets of 2,000 names. Past the budget the call fails (never
/// an entry left out). Shared by everything one call reads; its count is
/// atomic so that it is `Sendable` (one reader uses it at a time).
final class LinkWalkBudget: Sendable {
    /// Names one call may walk through. Layers built by diffing a
    /// filesystem write no entry through a link, and a layer of 100,000
    /// entries each written through a link of a few names walks ~1.5
    /// million; an archive that spends them all takes ~5 s (measured: a
    /// million names a third of a second).
    static let maxSteps = 16 << 20

    let limit: Int
    private let spent = Atomic<Int>(0)

    init(limit: Int = LinkWalkBudget.maxSteps) { self.limit = limit }

    /// Takes `steps` more names, or fails past the limit.
    func spend(_ steps: Int) throws(ArchiveError) {
        guard spent.add(steps, ordering: .relaxed).newValue <= limit else {
            throw ArchiveError(
                .tooLarge, reason: .archiveTooLarge,
                message:
                    "resolving where entries are written and where links lead walks more than \(limit) names (entries written through links with long targets)"
            )
        }
    }
}
