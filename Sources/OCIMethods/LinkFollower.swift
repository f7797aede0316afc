import Reasons
import Archive
import JSON

/// Links in `image_files` (and in `blob_files`, one layer). A wanted
/// name that is a symbolic or hard link shows what a runtime reading that
/// path in the container shows: the file the link leads to. So does a
/// wanted directory reached through a symbolic link (`lib` -> `usr/lib`).
/// Left out, a link would read as "no such file" where the container has
/// one.
///
/// - A symbolic link is resolved in the flattened filesystem (`PathTrie`)
///   as the kernel resolves it: component by component, relative to the
///   link's directory, `..` taken after the links before it, never above
///   the root.
/// - A hard link is the file its target named when the runtime unpacked
///   it: the last entry of that name before it in its layer, or else what
///   the layers below show there. A hard link to nothing, or to a
///   directory, cannot be unpacked, and fails the call.
/// - A symbolic link that leads nowhere, or to what is not a file, is left
///   out: the container cannot read it as a file either.
///
/// The files links lead to are read in passes over the layers after the
/// first, one pass per hard link in a chain; each pass reads from the
/// topmost layer a lookup starts in down to the last one it needs. What
/// the first pass already read (`captured`: a symbolic link's target
/// below it) needs no pass.
struct LinkFollower {
    /// Links one name may go through (Linux's `MAXSYMLINKS`); past it the
    /// call fails, as the container's read fails (`ELOOP`).
    static let maxHops = 40
    /// Hard links one name may go through: each costs a pass over the layers.
    static let maxHardLinkHops = 8
    /// Names one call follows links for.
    static let maxFollowed = 4096
    /// The paths one pass watches for: each path looked up and each of its
    /// ancestors, per lookup. What a layer's entries cost is bounded by it,
    /// however the entries are crafted.
    static let maxWatchedNames = 1 << 16

    /// An entry's place: `depth` 0 is the top layer, `index` the entry's
    /// place among its layer's entries.
    struct Position: Equatable {
        let depth: Int
        let index: Int
        /// Above every entry: a lookup from here sees the flattened filesystem.
        static let top = Position(depth: 0, index: Int.max)
    }

    /// What a lookup found at its path.
    enum Found {
        /// A file, parsed (nil: not YAML or JSON, or over the entry limit;
        /// left out, as such a file is).
        case file(JSONValue?)
        case hardLink(target: String, at: Position)
        case symbolicLink(target: String)
        case directory, other, absent
    }

    /// One path looked up for one answer's key.
    struct Lookup {
        /// The answer's key: the wanted name.
        let key: String
        /// The cleaned path looked up.
        let path: String
        /// Entries at or above it do not count.
        let start: Position
        /// The path the runtime reads the file by: a symbolic link found at
        /// `path` is resolved from its directory.
        let readingPath: String
        /// Whether `path` is a hard link's target, which must exist.
        let isHardLinkTarget: Bool
        /// Links followed so far, and how many of them were hard links.
        let hops: Int
        let hardLinkHops: Int
        /// What the pass found, once a layer decides it.
        var found: Found?
    }

    /// What the call may walk resolving paths through links.
    private let budget: LinkWalkBudget

    /// Nothing followed yet; the names walked taken from `budget`.
    init(walking budget: LinkWalkBudget) { self.budget = budget }

    private var lookups: [Lookup] = []
    /// The lookups of each path looked up.
    private var lookingAt: [String: [Int]] = [:]
    /// For each ancestor (`.` included) of a path looked up, the lookups
    /// under it.
    private var lookingUnder: [String: [Int]] = [:]
    /// Names in `lookingAt` and `lookingUnder`, counted once per lookup.
    private var watchedNames = 0
    private var followed = 0
    /// The files found through links, by key.
    private(set) var files: [String: JSONValue] = [:]
    /// What stands at paths the first pass read for links that might lead
    /// there (`LayerFlattener`): each the entry that stands there in the
    /// flattened filesystem, found by the lookup a pass would make.
    var captured: [String: Found] = [:]

    /// The topmost layer the next pass reads from; nil when nothing is left.
    var nextPassDepth: Int? { lookups.lazy.map(\.start.depth).min() }

    /// Whether the layers read so far in this pass decided every lookup
    /// (the layers below need not be read).
    var passIsDecided: Bool { lookups.allSatisfy { $0.found != nil } }

    /// Follows the hard link `key`, at `position`, to `target`.
    mutating func followHardLink(_ key: String, to target: String, at position: Position) throws(ArchiveError) {
        try countFollowed()
        try enqueue(
            Lookup(
                key: key, path: ArchivePath.clean(target), start: position, readingPath: key, isHardLinkTarget: true,
                hops: 1, hardLinkHops: 1))
    }

    /// Follows `path` in `namespace` from the root, symbolic links in it
    /// included, to the file the answer's `key` shows.
    mutating func follow(_ key: String, path: String, in namespace: PathTrie) throws(ArchiveError) {
        try countFollowed()
        try resolveAndEnqueue(key: key, path: path, hops: 0, hardLinkHops: 0, in: namespace)
    }

    /// Follows the symbolic link `key`, written at `link` (by default
    /// `key`), to `target`, in `namespace`. The target is resolved from
    /// the directory the link was written in, through the namespace's
    /// links.
    mutating func followSymbolicLink(
        _ key: String, to target: String, from link: String? = nil, in namespace: PathTrie
    ) throws(ArchiveError) {
        try countFollowed()
        try resolveAndEnqueue(
            key: key, path: Self.path(of: target, from: link ?? key), hops: 1, hardLinkHops: 0, in: namespace)
    }

    /// A symbolic link's target as a path from the root: itself when it is
    /// absolute, else from the directory of `link`.
    static func path(of target: String, from link: String) -> String {
        let directory = ArchivePath.directory(link)
        return target.hasPrefix("/") || directory == "." ? target : directory + "/" + target
    }

    /// Reads one layer of a pass (`depth` 0 first), each entry where
    /// unpacking the layer writes it (`LayerPlacement`): for each lookup it
    /// decides, the last entry at its path that counts (for a lookup that
    /// starts in this layer, the last before its start) unless an entry
    /// after it that is not a directory removed it, or else whether the
    /// layer hides its path from the layers below (a whiteout, an opaque
    /// directory, an entry that is not a directory above it). Each entry
    /// costs a few hash lookups; what it bears on is settled once per
    /// layer, after its last entry.
    mutating func apply(
        _ tar: TarReader, depth: Int, kept: inout FileContent.Kept, maxEntryBytes: Int
    ) throws {
        let deciding = lookups.indices.filter { limit($0, depth) != nil }
        guard !deciding.isEmpty else { return }
        var arrivals: [String: Arrivals] = [:]
        for id in deciding { arrivals[lookups[id].path, default: Arrivals()].waiting.append((limit(id, depth)!, id)) }
        for path in arrivals.keys { arrivals[path]!.waiting.sort { $0.limit < $1.limit } }
        // The first whiteout of each watched path, and the first whiteout
        // or opaque marker of what is under it; each entry that is not a
        // directory at a path above a watched one, in order.
        var hidesItself: [String: Int] = [:]
        var hidesUnder: [String: Int] = [:]
        var removals: [String: [Int]] = [:]
        var placement = LayerPlacement(walking: budget)
        var index = -1
        while let entry = try tar.next() {
            index += 1
            let name = ArchivePath.clean(entry.name)
            guard name != "." else { continue }
            let base = ArchivePath.base(name)
            if base == ".wh..wh..opq" {
                let directory = try placement.placeDirectory(ArchivePath.directory(name))
                if lookingUnder[directory] != nil, hidesUnder[directory] == nil { hidesUnder[directory] = index }
            } else if base.hasPrefix(".wh.") {
                let directory = try placement.placeDirectory(ArchivePath.directory(name))
                let target = directory == "." ? String(base.dropFirst(4)) : directory + "/" + base.dropFirst(4)
                if lookingAt[target] != nil, hidesItself[target] == nil { hidesItself[target] = index }
                if lookingUnder[target] != nil, hidesUnder[target] == nil { hidesUnder[target] = index }
            } else {
                let path = try placement.place(name)
                if arrivals[path]?.isWaiting(after: index) == true {
                    let found = try Self.found(
                        entry, name: path, at: Position(depth: depth, index: index), placement: placement, in: tar,
                        kept: &kept, maxEntryBytes: maxEntryBytes)
                    arrivals[path]!.arrive(found, at: index)
                }
                if entry.kind != .directory, lookingUnder[path] != nil { removals[path, default: []].append(index) }
                placement.record(path, PathTrie.Standing(entry))
            }
        }
        var decided: [Int: (found: Found, at: Int)] = [:]
        for arrival in arrivals.values { arrival.settle(into: &decided) }
        var hidden = Set<Int>()
        for (path, at) in hidesItself {
            for id in lookingAt[path]! where at < limit(id, depth) ?? 0 { hidden.insert(id) }
        }
        for (path, at) in hidesUnder {
            for id in lookingUnder[path]! where at < limit(id, depth) ?? 0 { hidden.insert(id) }
        }
        // The last entry before each lookup's limit that removed its path:
        // one that is not a directory, at a path above it. Found from the
        // removals, each for the lookups under it: however deep a path
        // looked up is, no ancestor of it is hashed again.
        var lastRemovals: [Int: Int] = [:]
        for (path, indices) in removals {
            for id in lookingUnder[path] ?? [] {
                guard let limit = limit(id, depth), let last = Self.last(of: indices, before: limit) else { continue }
                lastRemovals[id] = max(lastRemovals[id] ?? last, last)
            }
        }
        for id in deciding {
            let removal = lastRemovals[id]
            if let arrival = decided[id] {
                lookups[id].found = removal.map { $0 > arrival.at } == true ? .absent : arrival.found
            } else if hidden.contains(id) || removal != nil {
                lookups[id].found = .absent
            }
        }
    }

    /// The last of `indices` (ascending) before `limit`.
    private static func last(of indices: [Int], before limit: Int) -> Int? {
        // The first at or past the limit, less one.
        var low = 0
        var high = indices.count
        while low < high {
            let middle = (low + high) / 2
            if indices[middle] < limit { low = middle + 1 } else { high = middle }
        }
        return low > 0 ? indices[low - 1] : nil
    }

    /// The entries at one path in a layer, as they arrive, for the lookups
    /// of that path: each takes the last entry before its limit.
    private struct Arrivals {
        /// The lookups, by limit (ascending), and the first not yet settled.
        var waiting: [(limit: Int, id: Int)] = []
        var next = 0
        var last: (found: Found, at: Int)?
        var settled: [(id: Int, found: Found, at: Int)] = []

        /// Whether an entry at `index` counts for any lookup.
        func isWaiting(after index: Int) -> Bool {
            waiting.last.map { $0.limit > index } ?? false
        }

        mutating func arrive(_ found: Found, at index: Int) {
            while next < waiting.count, waiting[next].limit <= index {
                if let last { settled.append((waiting[next].id, last.found, last.at)) }
                next += 1
            }
            last = (found, index)
        }

        func settle(into decided: inout [Int: (found: Found, at: Int)]) {
            for (id, found, at) in settled { decided[id] = (found, at) }
            guard let last else { return }
            for (_, id) in waiting[next...] { decided[id] = last }
        }
    }

    /// Ends a pass: keeps the files found, and looks up next what the links
    /// found lead to.
    mutating func finishPass(in namespace: PathTrie) throws(ArchiveError) {
        let done = lookups
        lookups = []
        lookingAt = [:]
        lookingUnder = [:]
        watchedNames = 0
        for lookup in done { try settle(lookup, lookup.found ?? .absent, in: namespace) }
    }

    /// Keeps what `lookup` found, or looks up next what it leads to.
    private mutating func settle(_ lookup: Lookup, _ found: Found, in namespace: PathTrie) throws(ArchiveError) {
        switch found {
        case .file(let value):
            if let value { files[lookup.key] = value }
        case .hardLink(let target, let position):
            guard lookup.hops < Self.maxHops, lookup.hardLinkHops < Self.maxHardLinkHops else {
                throw Self.tooManyLinks(lookup.key)
            }
            try enqueue(
                Lookup(
                    key: lookup.key, path: ArchivePath.clean(target), start: position,
                    readingPath: lookup.readingPath, isHardLinkTarget: true, hops: lookup.hops + 1,
                    hardLinkHops: lookup.hardLinkHops + 1))
        case .symbolicLink(let target):
            guard lookup.hops < Self.maxHops else { throw Self.tooManyLinks(lookup.key) }
            try resolveAndEnqueue(
                key: lookup.key, path: Self.path(of: target, from: lookup.readingPath), hops: lookup.hops + 1,
                hardLinkHops: lookup.hardLinkHops, in: namespace)
        case .absent where lookup.isHardLinkTarget, .directory where lookup.isHardLinkTarget:
            throw ArchiveError.corrupt(
                "\(lookup.key.prefix(256)) is a hard link to \(lookup.path.prefix(256)), which is not a file where the layers unpack it"
            )
        case .directory, .other, .absent:
            break
        }
    }

    private mutating func resolveAndEnqueue(
        key: String, path: String, hops: Int, hardLinkHops: Int, in namespace: PathTrie
    ) throws(ArchiveError) {
        guard let reached = try namespace.resolve(path, hops: hops, budget: budget) else { return }
        switch namespace.standing(reached.node) {
        case .file, .hardlink:
            let lookup = Lookup(
                key: key, path: reached.path, start: .top, readingPath: reached.path, isHardLinkTarget: false,
                hops: reached.hops, hardLinkHops: hardLinkHops)
            // What the first pass read there already needs no pass of its own.
            if let found = captured[reached.path] {
                try settle(lookup, found, in: namespace)
            } else {
                try enqueue(lookup)
            }
        default:
            // A directory, a device: not a file the container reads.
            break
        }
    }

    private mutating func enqueue(_ lookup: Lookup) throws(ArchiveError) {
        let id = lookups.count
        lookups.append(lookup)
        lookingAt[lookup.path, default: []].append(id)
        watchedNames += 1
        var path = lookup.path
        while path != "." {
            path = ArchivePath.directory(path)
            lookingUnder[path, default: []].append(id)
            watchedNames += 1
        }
        guard watchedNames <= Self.maxWatchedNames else {
            throw ArchiveError(
                .tooLarge, reason: .archiveTooLarge,
                message: "the links' targets name more than \(Self.maxWatchedNames) paths and directories together")
        }
    }

    private mutating func countFollowed() throws(ArchiveError) {
        followed += 1
        guard followed <= Self.maxFollowed else {
            throw ArchiveError(
                .tooLarge, reason: .archiveTooLarge,
                message: "the wanted files include more than \(Self.maxFollowed) links")
        }
    }

    /// Of the layer at `depth`, the entries before which index count for
    /// lookup `id` (all of a layer below its start, those before it in its
    /// start's layer); nil when none does (the layer is above its start, or
    /// a layer above decided it).
    private func limit(_ id: Int, _ depth: Int) -> Int? {
        let lookup = lookups[id]
        guard lookup.found == nil, depth >= lookup.start.depth else { return nil }
        return depth > lookup.start.depth ? Int.max : lookup.start.index
    }

    private static func found(
        _ entry: TarEntry, name: String, at position: Position, placement: LayerPlacement, in tar: TarReader,
        kept: inout FileContent.Kept, maxEntryBytes: Int
    ) throws -> Found {
        switch entry.kind {
        case .file:
            // Too large to parse: left out, as such a file is.
            guard entry.size <= maxEntryBytes else { return .file(nil) }
            return .file(try kept.read(tar, size: entry.size, maxEntryBytes: maxEntryBytes))
        case .sparse: throw ArchiveError.sparseFile(name)
        case .hardlink:
            let named = ArchivePath.clean(entry.linkName)
            return .hardLink(target: named == "." ? named : try placement.place(named), at: position)
        case .symlink: return .symbolicLink(target: entry.linkName)
        case .directory: return .directory
        case .other: return .other
        }
    }

    static func tooManyLinks(_ name: String) -> ArchiveError {
        ArchiveError.corrupt(
            "\(name.prefix(256)) leads through more than \(maxHops) links, or \(maxHardLinkHops) hard links")
    }
}
