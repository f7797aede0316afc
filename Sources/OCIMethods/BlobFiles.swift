import Reasons
import Archive
import JSON
import YAML

/// `blob_files`: the entries of one tar whose names are exactly one of
/// the paths asked for, parsed as YAML or JSON; the last entry of a name
/// is the one read, as unpacking the tar leaves it. Unparseable and
/// oversized entries are skipped; one stored sparse is an error (its data
/// is a map of holes, which is not read). An entry asked for that is a
/// link shows the file it leads to in the archive, as the tar unpacked
/// shows it (`LinkFollower`: a hard link the file its target named before
/// it, a symbolic link resolved among the archive's names), read in
/// further passes over the blob; a hard link to nothing is
/// `corrupt_archive`, a symbolic link to nothing is left out. An archive
/// that writes over its own entries (`LayerOverlaps`) has each name asked
/// for read where the unpacked archive has it, through its namespace.
package struct BlobFiles {
    private let paths: Set<String>
    private let maxEntryBytes: Int
    private var kept: FileContent.Kept
    private var files: [String: JSONValue] = [:]
    /// Entries asked for that are links, by name: where unpacking writes
    /// each, its target (a hard link's where unpacking finds it) and its
    /// place among the entries.
    private var links: [String: (kind: TarEntry.Kind, path: String, target: String, index: Int)] = [:]
    /// The archive's names and what stands at each, for symbolic links.
    private var namespace: PathTrie
    /// The names asked for that the archive holds an entry of.
    private var asked: Set<String> = []
    /// Whether the archive writes over its own entries.
    private var overlaps: LayerOverlaps
    /// Whether an entry asked for was written through a link: where it was
    /// written is resolved as a path is joined and cleaned, its name is
    /// read as the kernel resolves it, and the two can differ (a link to
    /// `b/../etc` where `b` is missing).
    private var writesThroughLinks = false
    /// What the passes remember of the archive's entries (the first: the
    /// hashes of their paths and its links; `readNamespace`: its
    /// namespace), together, counted as `image_files` counts what it
    /// remembers of layers, and bounded the same way.
    private let remembered: RememberedEntries
    private var follower: LinkFollower
    /// What the call may walk resolving paths through links.
    private let budget = LinkWalkBudget()

    init(
        paths: Set<String>, maxEntryBytes: Int, maxKeptBytes: Int = FileContent.maxKeptBytes,
        maxTrackedBytes: Int = RememberedEntries.maxBytes
    ) {
        // Held as the archive's names are held (`ArchiveName`): by their bytes.
        self.paths = Set(paths.map(ArchiveName.held))
        self.maxEntryBytes = maxEntryBytes
        remembered = RememberedEntries(of: "the archive holds", limit: maxTrackedBytes)
        namespace = PathTrie(countingInto: remembered)
        overlaps = LayerOverlaps(countingInto: remembered)
        follower = LinkFollower(walking: budget)
        kept = FileContent.Kept(limit: maxKeptBytes)
    }

    /// The first pass: the files asked for, and the links among them.
    mutating func read(_ tar: TarReader) throws {
        var index = -1
        var placement = LayerPlacement(countingInto: remembered, walking: budget)
        while let entry = try tar.next() {
            index += 1
            let name = ArchivePath.clean(entry.name)
            try remembered.count(nameBytes: name.utf8.count + entry.linkName.utf8.count)
            let path = name == "." ? name : try placement.place(name)
            defer {
                if name != "." {
                    placement.record(path, PathTrie.Standing(entry))
                    overlaps.note(path, isDirectory: entry.kind == .directory)
                }
            }
            guard paths.contains(entry.name) else { continue }
            if entry.kind == .sparse { throw ArchiveError.sparseFile(entry.name) }
            files[entry.name] = nil
            asked.insert(entry.name)
            if path != name { writesThroughLinks = true }
            switch entry.kind {
            case .symlink:
                links[entry.name] = (entry.kind, path, entry.linkName, index)
            case .hardlink:
                let named = ArchivePath.clean(entry.linkName)
                links[entry.name] = (entry.kind, path, named == "." ? named : try placement.place(named), index)
            default:
                links[entry.name] = nil
            }
            // Too large to parse: skipped, as the builtin skips it. A read
            // that fails (a cut stream, the budget, cancellation) fails the call.
            guard entry.kind == .file, entry.size <= maxEntryBytes else { continue }
            files[entry.name] = try kept.read(tar, size: entry.size, maxEntryBytes: maxEntryBytes)
        }
        try remembered.check(all: true)
    }

    /// Whether a symbolic link was asked for: its target is resolved among
    /// the archive's names, which `readNamespace` reads in a pass of its own.
    var needsNamespace: Bool { links.values.contains { $0.kind == .symlink } || readsThroughNamespace }

    /// Whether the names asked for are read as the unpacked archive has
    /// them, resolved through its namespace, not as the entries of those
    /// names were found: an archive that writes over its own entries (a
    /// name written twice, a file or link put where a directory of entries
    /// was) may have replaced or removed them, or the links they were
    /// written through; one written through a link may be read elsewhere.
    private var readsThroughNamespace: Bool { (overlaps.found || writesThroughLinks) && !asked.isEmpty }

    /// Reads the archive's names and what stands at each once it is
    /// unpacked (each entry where unpacking writes it, the last one
    /// written at a path, nothing under one that is not a directory),
    /// bounded as `image_files` bounds what it keeps of entries.
    mutating func readNamespace(_ tar: TarReader) throws {
        var placement = LayerPlacement(walking: budget)
        while let entry = try tar.next() {
            let name = ArchivePath.clean(entry.name)
            guard name != "." else { continue }
            try remembered.count(nameBytes: name.utf8.count + entry.linkName.utf8.count)
            let path = try placement.place(name)
            let standing = PathTrie.Standing(entry)
            placement.record(path, standing)
            // A directory written over one merges with it; anything else replaces what was there.
            if standing == .directory, let node = namespace.node(at: path),
                namespace.standing(node) ?? .directory == .directory
            {
                namespace.insert(path, .seen, standing: standing)
            } else {
                namespace.replace(path, with: standing)
            }
        }
        try remembered.check(all: true)
    }

    /// After the first pass (and `readNamespace` when needed): looks up
    /// what the links asked for lead to. Then, while `needsPass`, read the
    /// archive through `applyFollowingLinks` and end with `finishPass`.
    mutating func startFollowingLinks() throws(ArchiveError) {
        if readsThroughNamespace {
            for name in asked.sorted() {
                files[name] = nil
                try follower.follow(name, path: ArchivePath.clean(name), in: namespace)
            }
            return
        }
        for (name, link) in links.sorted(by: { $0.key < $1.key }) {
            if link.kind == .hardlink {
                try follower.followHardLink(
                    name, to: link.target, at: LinkFollower.Position(depth: 0, index: link.index))
            } else {
                try follower.followSymbolicLink(name, to: link.target, from: link.path, in: namespace)
            }
        }
    }

    var needsPass: Bool { follower.nextPassDepth != nil }

    mutating func applyFollowingLinks(_ tar: TarReader) throws {
        try follower.apply(tar, depth: 0, kept: &kept, maxEntryBytes: maxEntryBytes)
    }

    mutating func finishPass() throws(ArchiveError) {
        try follower.finishPass(in: namespace)
    }

    /// The files read, by entry name (sorted), those found through links included.
    var result: JSONValue {
        let all = files.merging(follower.files) { own, _ in own }
        // Sorted as held (by their bytes, as Go sorts a map), written as read.
        return .object(
            JSONObject(all.keys.sorted().map { JSONObject.Member(key: ArchiveName.readable($0), value: all[$0]!) }))
    }

    /// The files of an archive held in memory, every pass included, as
    /// `blob_files` reads a downloaded one: for tests.
    package static func files(
        ofArchive archive: [UInt8], paths: Set<String>, maxEntryBytes: Int,
        maxKeptBytes: Int = FileContent.maxKeptBytes, maxTrackedBytes: Int = RememberedEntries.maxBytes
    ) throws -> JSONValue {
        var reader = BlobFiles(
            paths: paths, maxEntryBytes: maxEntryBytes, maxKeptBytes: maxKeptBytes, maxTrackedBytes: maxTrackedBytes)
        try reader.read(TarReader(MemoryByteStream(archive)))
        if reader.needsNamespace { try reader.readNamespace(TarReader(MemoryByteStream(archive))) }
        try reader.startFollowingLinks()
        while reader.needsPass {
            try reader.applyFollowingLinks(TarReader(MemoryByteStream(archive)))
            try reader.finishPass()
        }
        return reader.result
    }
}
