import Reasons
import Archive

/// Where unpacking one layer writes each of its entries. Runtimes unpack
/// each layer on its own (the overlay snapshotters of containerd, Docker
/// and CRI-O) and resolve an entry's directory through the symbolic links
/// the same layer made before it: after `lib -> usr/lib`, the entry
/// `lib/x` is written to `usr/lib/x`, and replaces what the layer wrote
/// there. A whiteout's directory is resolved the same way. Read by name,
/// such an entry would leave `usr/lib/x` as the layer held it before.
///
/// Until the layer's first symbolic link every entry is written where it
/// is named, and nothing is kept.
struct LayerPlacement {
    /// The layer's symbolic links so far, with the paths above them; nil
    /// before its first.
    private var links: PathTrie?
    /// What the call remembers, which the links' nodes add to.
    private let remembered: RememberedEntries?
    /// What the call may walk resolving paths through links.
    private let budget: LinkWalkBudget

    /// Nothing placed yet; the links' nodes counted into `remembered`
    /// (none: the same layer's links were counted by an earlier pass),
    /// and the names walked through them taken from `budget`.
    init(countingInto remembered: RememberedEntries? = nil, walking budget: LinkWalkBudget) {
        self.remembered = remembered
        self.budget = budget
    }

    /// Where the entry named `name` (cleaned, not the root) is written.
    func place(_ name: String) throws(ArchiveError) -> String {
        guard let links, links.holdsFirstComponent(of: name) else { return name }
        let directory = ArchivePath.directory(name)
        guard directory != "." else { return name }
        let placed = try links.placement(of: directory, budget: budget)
        return placed == "." ? ArchivePath.base(name) : placed + "/" + ArchivePath.base(name)
    }

    /// Where the directory `directory` (cleaned) of a whiteout or an
    /// opaque marker is.
    func placeDirectory(_ directory: String) throws(ArchiveError) -> String {
        guard let links, directory != ".", links.holdsFirstComponent(of: directory) else { return directory }
        return try links.placement(of: directory, budget: budget)
    }

    /// Records what the layer wrote at `placed`: a symbolic link is kept;
    /// anything else replaces a link there, or (when it is not a
    /// directory) the links under it.
    mutating func record(_ placed: String, _ standing: PathTrie.Standing) {
        if case .symlink = standing {
            if links == nil { links = PathTrie(countingInto: remembered) }
            links!.replace(placed, with: standing)
            return
        }
        guard let links, links.holdsFirstComponent(of: placed), let node = links.node(at: placed) else { return }
        switch (standing, links.standing(node)) {
        case (.directory, .symlink), (.file, _), (.hardlink, _), (.other, _):
            self.links!.replace(placed, with: standing)
        default:
            break
        }
    }
}

/// Whether a layer writes over its own entries: a path written twice, or
/// what is not a directory written where the layer already wrote under
/// it. Most layers do not, and then every entry a layer wrote stands,
/// with no namespace of the layer built to tell. Paths are kept as their
/// hashes: two paths that share one read as an overlap, which only costs
/// the check that finds what really stands.
struct LayerOverlaps {
    private var paths = Set<Int>()
    /// The directories above the paths written so far.
    private var directories = Set<Int>()
    private(set) var found = false
    /// What the call remembers, which each directory noted adds to (its
    /// paths are counted with their entries).
    private let remembered: RememberedEntries?

    init(countingInto remembered: RememberedEntries? = nil) { self.remembered = remembered }

    mutating func note(_ path: String, isDirectory: Bool) {
        guard !found else { return }
        // A layer's entries come directory by directory: in the directory
        // of the last path, only the name is hashed (its directories are
        // noted already).
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        if let slash, let last = lastDirectory, ArchiveName.same(path[..<slash], last.path) {
            var hasher = last.hasher
            var name = path[path.utf8.index(after: slash)...]
            name.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            noteHash(hasher.finalize(), isDirectory: isDirectory)
            return
        }
        // Else the path's hash and its directories', in one pass over its
        // bytes (linear in its length, however many names deep it is):
        // the process's seeded hash, so no archive can make two paths
        // share one at will.
        above.removeAll(keepingCapacity: true)
        var text = path
        var directoryHasher: Hasher?
        let hash = text.withUTF8 { bytes in
            var hasher = Hasher()
            var start = 0
            for index in bytes.indices where bytes[index] == UInt8(ascii: "/") {
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<index])))
                let directory = hasher
                above.append(directory.finalize())
                hasher.combine(UInt8(ascii: "/"))
                start = index + 1
            }
            directoryHasher = hasher
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start...])))
            return hasher.finalize()
        }
        guard noteHash(hash, isDirectory: isDirectory) else { return }
        // Noted from the nearest up: a directory already noted has its own
        // above it noted too, so most paths insert one hash or none.
        for directory in above.reversed() {
            guard directories.insert(directory).inserted else { break }
            remembered?.add(RememberedEntries.hashOverheadBytes)
        }
        if let slash, let directoryHasher { lastDirectory = (path[..<slash], directoryHasher) }
    }

    /// Notes one path's hash; false (and the overlap found) when a path
    /// written before has it, or a directory above one when this is no
    /// directory.
    @discardableResult
    private mutating func noteHash(_ hash: Int, isDirectory: Bool) -> Bool {
        guard paths.insert(hash).inserted, isDirectory || !directories.contains(hash) else {
            found = true
            paths = []
            directories = []
            lastDirectory = nil
            return false
        }
        return true
    }

    /// The hashes of one path's directories, kept for the next path.
    private var above: [Int] = []
    /// The directory of the last path noted, with the hash of its bytes
    /// and the `/` after them so far: its directories are all noted.
    private var lastDirectory: (path: Substring, hasher: Hasher)?
}

/// Hashes of a path and of each directory above it, made in one pass over
/// its bytes (linear in its length, however many names deep it is), with
/// the process's seeded hash, so no archive can make two paths share one
/// at will.
enum PathHashes {
    /// The hash of each directory above `path`, top first, then of `path`.
    static func prefixes(of path: String) -> [Int] {
        var hashes: [Int] = []
        forEach(of: path) { hashes.append($0) }
        return hashes
    }

    /// The hash of `path` itself: the last of `prefixes(of:)`, with no array made.
    static func hash(of path: String) -> Int {
        var last = 0
        forEach(of: path) { last = $0 }
        return last
    }

    private static func forEach(of path: String, _ body: (Int) -> Void) {
        var text = path
        text.withUTF8 { bytes in
            var hasher = Hasher()
            var start = 0
            for index in bytes.indices where bytes[index] == UInt8(ascii: "/") {
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<index])))
                let directory = hasher
                body(directory.finalize())
                hasher.combine(UInt8(ascii: "/"))
                start = index + 1
            }
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start...])))
            body(hasher.finalize())
        }
    }
}
