import Reasons
import Archive
import JSON
import YAML

/// `image_files`: reads an image's layers from the top one down and keeps
/// what the flattened filesystem shows. Each layer is unpacked as a
/// runtime unpacks it on its own (`LayerPlacement`, `apply`), then stacked
/// as an overlay stacks it: an upper layer's entry hides a lower one, and
/// one that is not a directory (a file, a link) hides everything below it
/// under its path too; `.wh.<name>` deletes `<name>` below it,
/// `.wh..wh..opq` empties its directory below it. Only files in
/// the wanted directories with a YAML or JSON extension are read; the rest
/// is skipped unread. A wanted file stored sparse is an error: its data is
/// a map of holes, which is not read. A wanted name that is a link, and a
/// wanted directory reached through a symbolic link, show the files they
/// lead to (`LinkFollower`), read in further passes over the layers.
package struct LayerFlattener {
    static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// The directories asked for, cleaned, by their `GoCase` fold keys.
    private let directories: Set<String>
    /// The same, cleaned only, as a symbolic link is resolved (by case).
    private let askedDirectories: [String]
    private let maxEntryBytes: Int
    /// Paths decided by an upper layer, whited out by one, or opaque in one.
    private var decided: PathTrie
    /// What is remembered of the layers' entries, bounded (an image of
    /// millions of entries is refused, not held).
    private let remembered: RememberedEntries
    private var files: [String: JSONValue] = [:]
    /// Wanted names that are links, by name, with where each stands.
    private var links: [String: (kind: TarEntry.Kind, target: String, at: LinkFollower.Position)] = [:]
    private var follower: LinkFollower
    /// What the call may walk resolving paths through links.
    private let budget: LinkWalkBudget
    /// Paths the wanted symbolic links name (as text), with what the first
    /// layer that shows an entry there has at it (`depth`; `found` nil when
    /// it cannot be kept, a sparse file). A path shown above the link, or
    /// earlier in its layer, hides every entry read after it, so what is
    /// kept is always what stands there; a link whose target resolves to a
    /// path kept here needs no further pass.
    private var linkTargets: [String: (depth: Int?, found: LinkFollower.Found?)] = [:]
    /// Whether the first pass keeps what stands at those paths (off, every
    /// link takes a pass: what the tests and the fuzzer compare with).
    private let keepsLinkTargets: Bool
    /// Paths whose lower layers runtimes stack differently (see
    /// `checkUnambiguous`): a layer both whited out and holds as a
    /// directory, put what is not a directory and then a directory at, or
    /// made opaque at its root. Read as an overlay reads them. Marked
    /// `seen` in a trie, so that finding the one a path is under is one
    /// walk down the path (a lookup of each ancestor hashes each anew:
    /// quadratic in a path's length); why, by node.
    private var ambiguousPaths: PathTrie
    private var ambiguous: [Int: String] = [:]
    /// Layers applied so far: the next one's depth.
    private var depth = 0
    /// What the files kept hold in memory, bounded.
    private var kept: FileContent.Kept

    init(
        paths: [String], maxEntryBytes: Int, maxTrackedNameBytes: Int = RememberedEntries.maxBytes,
        maxKeptBytes: Int = FileContent.maxKeptBytes, keepsLinkTargets: Bool = true,
        maxLinkWalkSteps: Int = LinkWalkBudget.maxSteps
    ) {
        budget = LinkWalkBudget(limit: maxLinkWalkSteps)
        self.keepsLinkTargets = keepsLinkTargets
        // Held as the layers' names are held (`ArchiveName`): by their bytes.
        askedDirectories = Set(paths.map { ArchivePath.clean(ArchiveName.held($0)) }).sorted()
        directories = Set(askedDirectories.map { GoCase.foldKey(ofHeld: $0) })
        self.maxEntryBytes = maxEntryBytes
        remembered = RememberedEntries(of: "the layers hold", limit: maxTrackedNameBytes)
        decided = PathTrie(countingInto: remembered)
        ambiguousPaths = PathTrie(countingInto: remembered)
        follower = LinkFollower(walking: budget)
        kept = FileContent.Kept(limit: maxKeptBytes)
    }

    /// The files found so far, by cleaned entry name (sorted, as Go writes a
    /// map), those found through links included.
    ///
    /// Sorted as held (by their bytes, as Go sorts a map), written as read.
    /// Two names that differ only where they are not UTF-8 (or one with
    /// invalid bytes and one with U+FFFD there) are written alike: as two
    /// equal keys, a client keeps one file and drops the other, which the
    /// container still has (and a policy over every file never sees). That
    /// fails the call (`corrupt_archive`) rather than answer one of them.
    func result() throws -> JSONValue {
        let all = files.merging(follower.files) { own, _ in own }
        var members: [JSONObject.Member] = []
        members.reserveCapacity(all.count)
        // Only a name written with U+FFFD can be written like another.
        var replaced: [[UInt8]: String] = [:]
        for (name, value) in all.sorted(by: { $0.key < $1.key }) {
            let shown = ArchiveName.readable(name)
            if !shown.utf8.allSatisfy({ $0 < 0x80 }), shown.unicodeScalars.contains("\u{FFFD}") {
                if let other = replaced.updateValue(name, forKey: Array(shown.utf8)) {
                    throw ArchiveError.corrupt(
                        "\(shown.prefix(256)) names two files (bytes \(Self.hex(other)) and \(Self.hex(name))): names are written with U+FFFD for bytes that are not UTF-8, and two files of one name cannot be told apart"
                    )
                }
            }
            members.append(JSONObject.Member(key: shown, value: value))
        }
        return .object(JSONObject(members))
    }

    /// A held name's bytes in hex, at most 256 of them.
    private static func hex(_ name: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(
            decoding: ArchiveName.bytes(of: name).prefix(256).flatMap {
                [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]]
            },
            as: UTF8.self)
    }

    /// One entry of the layer being read, where unpacking the layer writes it.
    private struct Written {
        let path: String
        let index: Int
        let kind: TarEntry.Kind
        /// How the layers above hide it (they do not change while a layer is read).
        let hiddenAbove: PathTrie.Hiding
        let isWanted: Bool
        /// Whether what stands here is known without another pass: a file
        /// read (or too large to parse), or no file.
        var isKnown: Bool
        /// A symbolic link's target as the entry gives it; a hard link's
        /// target where unpacking finds it.
        let target: String
        /// The file's parsed contents, when read.
        var contents: JSONValue?

        var standing: PathTrie.Standing { PathTrie.Standing(kind, target: target) }
    }

    /// Applies the next layer down (call for the top layer first). The
    /// layer is unpacked as a runtime unpacks it on its own
    /// (`LayerPlacement`): the last entry written at a path stands, and
    /// one that is not a directory removes what the layer wrote under it.
    /// Then the layers above hide what they hide of it.
    mutating func apply(_ tar: TarReader) throws {
        // Whiteouts and opaque markers hide only the layers below this one.
        var markers: [Marker] = []
        var written: [Written] = []
        var placement = LayerPlacement(countingInto: remembered, walking: budget)
        var overlaps = LayerOverlaps(countingInto: remembered)
        // The layers above do not change while this one is read.
        var lastDirectory: (directory: Substring, standing: PathTrie.DirectoryStanding)?
        var index = -1
        while let entry = try tar.next() {
            index += 1
            let name = ArchivePath.clean(entry.name)
            guard name != "." else { continue }
            let isLink = entry.kind == .symlink || entry.kind == .hardlink
            try remembered.count(nameBytes: name.utf8.count + (isLink ? entry.linkName.utf8.count : 0))
            let base = ArchivePath.base(name)
            if base == ".wh..wh..opq" {
                markers.append(
                    Marker(
                        path: try placement.placeDirectory(ArchivePath.directory(name)), mark: [.opaque, .parent],
                        index: index))
                continue
            }
            if base.hasPrefix(".wh.") {
                let directory = try placement.placeDirectory(ArchivePath.directory(name))
                let target = String(base.dropFirst(4))
                let deleted = directory == "." ? target : directory + "/" + target
                markers.append(Marker(path: deleted, mark: .deleted, index: index))
                // Its device stands at the path: an entry written there
                // later replaces it, as one written twice does.
                overlaps.note(deleted, isDirectory: false)
                continue
            }
            let path = try placement.place(name)
            var target = entry.linkName
            if entry.kind == .hardlink {
                let named = ArchivePath.clean(entry.linkName)
                target = named == "." ? named : try placement.place(named)
            }
            placement.record(path, PathTrie.Standing(entry.kind, target: target))
            overlaps.note(path, isDirectory: entry.kind == .directory)
            let hiddenAbove = decided.hiding(path, after: &lastDirectory)
            let wanted = hiddenAbove == .none && isWanted(path)
            var item = Written(
                path: path, index: index, kind: entry.kind, hiddenAbove: hiddenAbove, isWanted: wanted,
                isKnown: entry.kind != .file && entry.kind != .sparse, target: target, contents: nil)
            if hiddenAbove == .none {
                if wanted && entry.kind == .sparse { throw ArchiveError.sparseFile(path) }
                // What a wanted symbolic link names is read from here on
                // (this layer's entries after it, the layers below).
                if wanted && entry.kind == .symlink && keepsLinkTargets {
                    let target = ArchivePath.clean(LinkFollower.path(of: entry.linkName, from: path))
                    if linkTargets[target] == nil { linkTargets[target] = (nil, nil) }
                }
                // No name is hashed for this unless a wanted symbolic link came before.
                let linkTarget = !linkTargets.isEmpty && linkTargets[path].map { $0.depth == nil } == true
                // A file is read once, for the answer and for a link to it.
                // Too large to parse: skipped, as the builtin skips it.
                if entry.kind == .file && (wanted || linkTarget) {
                    if entry.size <= maxEntryBytes {
                        item.contents = try kept.read(tar, size: entry.size, maxEntryBytes: maxEntryBytes)
                    }
                    item.isKnown = true
                }
            }
            written.append(item)
        }
        try remembered.check(all: true)
        if overlaps.found && !markers.isEmpty { try Self.checkMarkersStandInDirectories(written, markers, remembered) }
        try settleLayer(written, markers: markers, replacesEntries: overlaps.found)
        try remembered.check(all: true)
        depth += 1
    }

    /// Ends a layer: of what it wrote, what stands once it is unpacked
    /// (read from its last entry back, as layers are read from the top
    /// down), and of that, what the layers above leave in view.
    private mutating func settleLayer(
        _ written: [Written], markers: [Marker], replacesEntries: Bool
    ) throws {
        let whitedOut = Set(markers.lazy.filter { $0.mark == .deleted }.map(\.path))
        // The markers the layer's later entries leave (all of them, when it
        // writes over none of its entries), by place.
        var kept = Array(repeating: true, count: markers.count)
        // What this layer makes ambiguous bears on the layers below it only.
        var ambiguousHere: [String: String] = [:]
        defer {
            for (path, why) in ambiguousHere {
                ambiguousPaths.insert(path, .seen)
                if let node = ambiguousPaths.node(at: path), ambiguous[node] == nil { ambiguous[node] = why }
            }
        }
        var nextMarker = markers.count - 1
        var unpacked = PathTrie(countingInto: remembered)
        // The entries that stand and show, by their place in `written`.
        var standing: [Int] = []
        var cuts: [String] = []
        var entries: [String] = []
        for place in written.indices.reversed() {
            let item = written[place]
            // A whiteout or opaque marker removed with what it was under, or
            // replaced by a later entry at its path, is gone.
            while replacesEntries, nextMarker >= 0, markers[nextMarker].index > item.index {
                if unpacked.hiding(markers[nextMarker].placedAt) == .wholly { kept[nextMarker] = false }
                nextMarker -= 1
            }
            // Replaced by a later entry at its path, or removed by one above it
            // that is not a directory; later entries under it leave it.
            switch replacesEntries ? unpacked.hiding(item.path) : .none {
            case .none, .directoryWithoutEntry: break
            case .wholly: continue
            case .directory:
                // A directory later replaced what is not one, which had
                // removed what the layer wrote under it before; what the
                // layers below hold there, runtimes differ on.
                if item.kind != .directory {
                    unpacked.insert(item.path, .opaque)
                    try remembered.check()
                    if item.hiddenAbove != .wholly {
                        ambiguousHere[item.path] = "is not a directory and then a directory in one layer"
                    }
                }
                continue
            }
            if replacesEntries {
                unpacked.insert(item.path, item.kind == .directory ? .seen : .notDirectory)
                try remembered.check()
            }
            if item.kind == .directory && !whitedOut.isEmpty && whitedOut.contains(item.path)
                && item.hiddenAbove != .wholly
            {
                ambiguousHere[item.path] = "is whited out by a layer that also holds it as a directory"
                for (index, marker) in markers.enumerated() where marker.path == item.path && marker.mark == .deleted {
                    kept[index] = false
                }
            }
            switch item.hiddenAbove {
            case .none:
                if item.kind != .directory { try checkUnambiguous(item.path) }
                standing.append(place)
            case .wholly,
                .directory where item.kind == .directory:
                continue
            case .directory:
                // A directory above replaced this: nothing below it shows under it.
                cuts.append(item.path)
            case .directoryWithoutEntry:
                // Under a path whose lower layers a runtime unpacking every
                // layer in one directory removed, the link is gone there too.
                guard item.kind == .symlink, ambiguity(of: item.path) == nil else {
                    // What is not a directory is replaced by the directory
                    // above, and hides what is below; a directory's own
                    // entry is remembered, so a symbolic link below is not
                    // mistaken for what the directory above stands on.
                    if item.kind != .directory { cuts.append(item.path) } else { entries.append(item.path) }
                    continue
                }
                throw ArchiveError.corrupt(
                    "\(item.path.prefix(256)) is a symbolic link, and a layer above it holds entries under that name but no entry for it: runtimes unpack those entries in different places (through the link, or in a directory of that name)"
                )
            }
        }
        while replacesEntries, nextMarker >= 0 {
            if unpacked.hiding(markers[nextMarker].placedAt) == .wholly { kept[nextMarker] = false }
            nextMarker -= 1
        }
        for item in standing.lazy.map({ written[$0] }) {
            if item.isWanted {
                files[item.path] = item.contents
                switch item.kind {
                case .symlink, .hardlink: links[item.path] = (item.kind, item.target, position(item))
                default: links[item.path] = nil
                }
            }
        }
        if !linkTargets.isEmpty {
            for item in standing.lazy.map({ written[$0] }) where linkTargets[item.path].map({ $0.depth == nil }) == true
            {
                linkTargets[item.path] = (depth, found(item))
            }
        }
        for item in standing.lazy.map({ written[$0] }) {
            decided.insert(item.path, item.kind == .directory ? .seen : .notDirectory, standing: item.standing)
            try remembered.check()
        }
        for path in cuts {
            decided.insert(path, .opaque)
            try remembered.check()
        }
        for path in entries {
            decided.insert(path, .seen)
            try remembered.check()
        }
        for (marker, isKept) in zip(markers, kept) where isKept {
            let (path, mark) = (marker.path, marker.mark)
            guard path != "." || !mark.contains(.opaque) else {
                // An opaque marker for the root: overlayfs does not read a
                // layer's root as opaque, a runtime unpacking every layer in
                // one directory empties it.
                ambiguousHere["."] = "is made opaque, the image's root"
                continue
            }
            decided.insert(path, mark)
            try remembered.check()
        }
    }

    private func position(_ item: Written) -> LinkFollower.Position {
        LinkFollower.Position(depth: depth, index: item.index)
    }

    /// What a lookup of `item`'s path finds, when known without a pass.
    private func found(_ item: Written) -> LinkFollower.Found? {
        guard item.isKnown else { return nil }
        switch item.kind {
        case .file: return .file(item.contents)
        case .symlink: return .symbolicLink(target: item.target)
        case .hardlink: return .hardLink(target: item.target, at: position(item))
        case .directory: return .directory
        case .other: return .other
        case .sparse: return nil
        }
    }

    /// Fails on a whiteout or opaque marker under what its layer wrote
    /// before it and is no directory or link (a file, a whiteout's device),
    /// or on an opaque marker at such a path. containerd refuses such a
    /// layer (it cannot make the marker's directory); containers/storage
    /// (CRI-O, Podman) leaves the marker out, so a directory the layer
    /// writes there after it shows what the layers below hold:
    /// `.wh.a`, `a/.wh.b`, `a/` shows the `a/b` below. Run only for a
    /// layer that writes over its own entries (`LayerOverlaps`, which
    /// notes each whiteout's device): in any other, nothing a marker is
    /// under is replaced later. What stands is kept by hash (in one pass
    /// over each path, linear however deep); a path whose directory was
    /// replaced after it stays noted, which can only refuse.
    private static func checkMarkersStandInDirectories(
        _ written: [Written], _ markers: [Marker], _ remembered: RememberedEntries?
    ) throws(ArchiveError) {
        var notDirectories = Set<Int>()
        var next = written.startIndex
        for marker in markers {
            while next < written.endIndex, written[next].index < marker.index {
                let item = written[next]
                next += 1
                let hash = PathHashes.hash(of: item.path)
                if item.kind == .directory || item.kind == .symlink {
                    notDirectories.remove(hash)
                } else if notDirectories.insert(hash).inserted {
                    remembered?.add(RememberedEntries.hashOverheadBytes)
                }
            }
            // The directory the marker is made in, and those above it.
            let under = marker.mark.contains(.opaque) ? marker.path : ArchivePath.directory(marker.path)
            if under != ".", !notDirectories.isEmpty {
                let standing = PathHashes.prefixes(of: under).first { notDirectories.contains($0) }
                if standing != nil {
                    throw ArchiveError.corrupt(
                        "\(marker.placedAt.prefix(256)) is a whiteout or opaque marker under what its layer wrote before it as no directory: runtimes unpack it differently (containerd refuses the layer, containers/storage leaves the marker out)"
                    )
                }
            }
            if marker.mark == .deleted, notDirectories.insert(PathHashes.hash(of: marker.path)).inserted {
                remembered?.add(RememberedEntries.hashOverheadBytes)
            }
        }
        try remembered?.check()
    }

    /// A whiteout (`deleted` at the path it deletes) or an opaque marker
    /// (`opaque` at its directory), and its place in its layer.
    private struct Marker {
        let path: String
        let mark: PathTrie.Mark
        let index: Int

        /// Where the marker itself stands in its layer: a whiteout's device
        /// at the path it deletes, an opaque marker in its directory.
        var placedAt: String {
            guard mark.contains(.opaque) else { return path }
            return path == "." ? ".wh..wh..opq" : path + "/.wh..wh..opq"
        }
    }

    /// The path in `ambiguous` that `path` is at or under, and why it is
    /// there; nil when there is none.
    private func ambiguity(of path: String) -> (at: String, why: String)? {
        guard !ambiguous.isEmpty else { return nil }
        var node = PathTrie.root
        var deepest: (at: Substring, node: Int)? = ambiguous[node] != nil ? (".", node) : nil
        for name in PathTrie.components(path) {
            guard let child = ambiguousPaths.child(node, name) else { break }
            node = child
            if ambiguous[node] != nil { deepest = (path[..<name.endIndex], node) }
        }
        guard let deepest, let why = ambiguous[deepest.node] else { return nil }
        return (String(deepest.at), why)
    }

    /// Fails on a file or link, shown, at or under a path a layer above
    /// holds in a way runtimes stack differently (`ambiguous`): an overlay
    /// snapshotter shows it, a runtime that unpacks every layer in one
    /// directory (and the OCI image spec) does not.
    private func checkUnambiguous(_ path: String) throws(ArchiveError) {
        guard let (at, why) = ambiguity(of: path) else { return }
        throw ArchiveError.corrupt(
            "\(at.prefix(256)) \(why), and a layer below holds \(path.prefix(256)): runtimes differ on whether it shows"
        )
    }

    /// After the last layer: looks up what the wanted links, and the wanted
    /// directories reached through symbolic links, lead to. Then, while
    /// `nextPassDepth` is not nil, read the layers from that depth down
    /// through `applyFollowingLinks` and end each pass with `finishPass`.
    mutating func startFollowingLinks() throws(ArchiveError) {
        follower.captured = linkTargets.compactMapValues(\.found)
        linkTargets = [:]
        for (name, link) in links.sorted(by: { $0.key < $1.key }) {
            if link.kind == .hardlink {
                try follower.followHardLink(name, to: link.target, at: link.at)
            } else {
                try follower.followSymbolicLink(name, to: link.target, in: decided)
            }
        }
        for asked in askedDirectories {
            guard let reached = try decided.resolve(asked, hops: 0, budget: budget), reached.hops > 0,
                decided.standing(reached.node) ?? .directory == .directory
            else { continue }
            for (child, node) in decided.children(of: reached.node).sorted(by: { $0.key < $1.key }) {
                let key = asked == "." ? String(child) : asked + "/" + child
                guard files[key] == nil, links[key] == nil, isWanted(key, directory: asked) else { continue }
                switch decided.standing(node) {
                case .file, .hardlink, .symlink:
                    try follower.follow(
                        key, path: reached.path == "." ? String(child) : reached.path + "/" + child, in: decided)
                default: continue
                }
            }
        }
    }

    /// The layer the next pass of `startFollowingLinks` reads from (0 the
    /// top), or nil when every link is followed.
    var nextPassDepth: Int? { follower.nextPassDepth }

    /// Whether this pass needs no more layers.
    var passIsDecided: Bool { follower.passIsDecided }

    /// Reads the layer at `depth` for the links being followed.
    mutating func applyFollowingLinks(_ tar: TarReader, depth: Int) throws {
        try follower.apply(tar, depth: depth, kept: &kept, maxEntryBytes: maxEntryBytes)
    }

    mutating func finishPass() throws(ArchiveError) {
        try follower.finishPass(in: decided)
    }

    /// The files of layers held in memory (`topFirst`: the top layer
    /// first), each pass included, as `image_files` reads downloaded ones,
    /// the passes links took and the layers those passes read: for tests
    /// and the fuzzer.
    package static func files(
        ofLayers topFirst: [[UInt8]], paths: [String], maxEntryBytes: Int, keepsLinkTargets: Bool = true,
        maxTrackedNameBytes: Int = RememberedEntries.maxBytes
    ) throws -> (files: JSONValue, passes: Int, layersReread: Int) {
        var flattener = LayerFlattener(
            paths: paths, maxEntryBytes: maxEntryBytes, maxTrackedNameBytes: maxTrackedNameBytes,
            keepsLinkTargets: keepsLinkTargets)
        for layer in topFirst { try flattener.apply(TarReader(MemoryByteStream(layer))) }
        try flattener.startFollowingLinks()
        var passes = 0
        var layersReread = 0
        while let first = flattener.nextPassDepth {
            passes += 1
            for depth in first..<topFirst.count where !flattener.passIsDecided {
                layersReread += 1
                try flattener.applyFollowingLinks(TarReader(MemoryByteStream(topFirst[depth])), depth: depth)
            }
            try flattener.finishPass()
        }
        return (try flattener.result(), passes, layersReread)
    }

    private func isWanted(_ name: String) -> Bool { isWanted(name, directory: ArchivePath.directory(name)) }

    private func isWanted(_ name: String, directory: String) -> Bool {
        // As the original matches (`strings.EqualFold`), the extension
        // first: most entries are not YAML or JSON.
        let base = ArchivePath.base(name)
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex || base.count > 1,
            Self.extensions.contains(GoCase.foldKey(ofHeld: base[base.index(after: dot)...]))
        else { return false }
        return directories.contains(GoCase.foldKey(ofHeld: directory))
    }
}
