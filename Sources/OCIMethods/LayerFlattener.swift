import Reasons
import Archive
import JSON
import YAML

/// `image_files`: reads an image's layers from the top one down and keeps
/// what the flattened filesystem shows: a later layer's entry hides an
/// earlier one, and one that is not a directory (a file, a link) hides
/// everything below it under its path too, as a runtime unpacking the
/// layers replaces a directory with it; `.wh.<name>` deletes `<name>`
/// below it, `.wh..wh..opq` empties its directory below it. Only files in
/// the wanted directories with a YAML or JSON extension are read; the rest
/// is skipped unread. A wanted file stored sparse is an error: its data is
/// a map of holes, which is not read. A wanted name that is a link, and a
/// wanted directory reached through a symbolic link, show the files they
/// lead to (`LinkFollower`), read in further passes over the layers.
package struct LayerFlattener {
    static let extensions: Set<String> = ["yaml", "yml", "json"]
    /// The names the flattener remembers across layers, in bytes, at most
    /// (an archive of millions of entries is refused, not held).
    static let maxTrackedNameBytes = 64 << 20

    /// Cleaned, lower-cased directories asked for.
    private let directories: Set<String>
    /// The same, cleaned only, as a symbolic link is resolved (by case).
    private let askedDirectories: [String]
    private let maxEntryBytes: Int
    /// Paths decided by an upper layer, whited out by one, or opaque in one.
    private var decided = PathTrie()
    private var trackedNameBytes = 0
    private let maxTrackedNameBytes: Int
    private var files: [String: JSONValue] = [:]
    /// Wanted names that are links, by name, with where each stands.
    private var links: [String: (entry: TarEntry, at: LinkFollower.Position)] = [:]
    private var follower = LinkFollower()
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
    /// Layers applied so far: the next one's depth.
    private var depth = 0
    /// What the files kept hold in memory, bounded.
    private var kept: FileContent.Kept

    init(
        paths: [String], maxEntryBytes: Int, maxTrackedNameBytes: Int = LayerFlattener.maxTrackedNameBytes,
        maxKeptBytes: Int = FileContent.maxKeptBytes, keepsLinkTargets: Bool = true
    ) {
        self.keepsLinkTargets = keepsLinkTargets
        askedDirectories = Set(paths.map { ArchivePath.clean($0) }).sorted()
        directories = Set(askedDirectories.map { $0.lowercased() })
        self.maxEntryBytes = maxEntryBytes
        self.maxTrackedNameBytes = maxTrackedNameBytes
        kept = FileContent.Kept(limit: maxKeptBytes)
    }

    /// The files found so far, by cleaned entry name (sorted, as Go writes a
    /// map), those found through links included.
    var result: JSONValue {
        let all = files.merging(follower.files) { own, _ in own }
        return .object(JSONObject(all.keys.sorted().map { JSONObject.Member(key: $0, value: all[$0]!) }))
    }

    /// Applies the next layer down (call for the top layer first).
    mutating func apply(_ tar: TarReader) throws {
        // What this layer decides hides only the layers below it.
        var layerDecisions: [(String, PathTrie.Mark, PathTrie.Standing?)] = []
        var index = -1
        while let entry = try tar.next() {
            index += 1
            let name = ArchivePath.clean(entry.name)
            guard name != "." else { continue }
            trackedNameBytes += name.utf8.count
            guard trackedNameBytes <= maxTrackedNameBytes else {
                throw ArchiveError(
                    .tooLarge, reason: .archiveTooLarge,
                    message: "the layers hold more than \(maxTrackedNameBytes) bytes of entry names")
            }
            let base = ArchivePath.base(name)
            let directory = ArchivePath.directory(name)
            if base == ".wh..wh..opq" {
                layerDecisions.append((directory, .opaque, nil))
                continue
            }
            if base.hasPrefix(".wh.") {
                let target = String(base.dropFirst(4))
                layerDecisions.append((directory == "." ? target : directory + "/" + target, .deleted, nil))
                continue
            }
            guard !decided.hides(name) else { continue }
            // A symbolic link's target is kept too, against the same limit.
            if entry.kind == .symlink { trackedNameBytes += entry.linkName.utf8.count }
            layerDecisions.append((name, entry.kind == .directory ? .seen : .notDirectory, PathTrie.Standing(entry)))
            let wanted = isWanted(name, directory: directory)
            if wanted && entry.kind == .sparse { throw ArchiveError.sparseFile(name) }
            // The last entry of a name in a layer is the one that stands.
            let position = LinkFollower.Position(depth: depth, index: index)
            if wanted {
                links[name] = entry.kind == .symlink || entry.kind == .hardlink ? (entry, position) : nil
            }
            // No name is hashed for this unless a wanted symbolic link came before.
            let linkTarget =
                !linkTargets.isEmpty && (linkTargets[name].map { $0.depth == nil || $0.depth == depth } ?? false)
            // A file is read once, for the answer and for a link to it.
            // Too large to parse: skipped, as the builtin skips it.
            var contents: JSONValue?
            if entry.kind == .file && (wanted || linkTarget) && entry.size <= maxEntryBytes {
                contents = try kept.read(tar, size: entry.size, maxEntryBytes: maxEntryBytes)
            }
            if wanted { files[name] = contents }
            if linkTarget {
                let found: LinkFollower.Found?
                switch entry.kind {
                case .file: found = .file(contents)
                case .symlink: found = .symbolicLink(target: entry.linkName)
                case .hardlink: found = .hardLink(target: entry.linkName, at: position)
                case .directory: found = .directory
                case .other: found = .other
                case .sparse: found = nil
                }
                linkTargets[name] = (depth, found)
            }
            if wanted && entry.kind == .symlink && keepsLinkTargets {
                let target = ArchivePath.clean(LinkFollower.path(of: entry.linkName, from: name))
                if linkTargets[target] == nil { linkTargets[target] = (nil, nil) }
            }
        }
        for (path, mark, standing) in layerDecisions { decided.insert(path, mark, standing: standing) }
        depth += 1
    }

    /// After the last layer: looks up what the wanted links, and the wanted
    /// directories reached through symbolic links, lead to. Then, while
    /// `nextPassDepth` is not nil, read the layers from that depth down
    /// through `applyFollowingLinks` and end each pass with `finishPass`.
    mutating func startFollowingLinks() throws(ArchiveError) {
        follower.captured = linkTargets.compactMapValues(\.found)
        linkTargets = [:]
        for (name, link) in links.sorted(by: { $0.key < $1.key }) {
            if link.entry.kind == .hardlink {
                try follower.followHardLink(name, to: link.entry.linkName, at: link.at)
            } else {
                try follower.followSymbolicLink(name, to: link.entry.linkName, in: decided)
            }
        }
        for asked in askedDirectories {
            guard let reached = try decided.resolve(asked, hops: 0), reached.hops > 0,
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
        ofLayers topFirst: [[UInt8]], paths: [String], maxEntryBytes: Int, keepsLinkTargets: Bool = true
    ) throws -> (files: JSONValue, passes: Int, layersReread: Int) {
        var flattener = LayerFlattener(
            paths: paths, maxEntryBytes: maxEntryBytes, keepsLinkTargets: keepsLinkTargets)
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
        return (flattener.result, passes, layersReread)
    }

    private func isWanted(_ name: String, directory: String) -> Bool {
        guard directories.contains(directory.lowercased()) else { return false }
        let base = ArchivePath.base(name)
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex || base.count > 1 else { return false }
        return Self.extensions.contains(base[base.index(after: dot)...].lowercased())
    }
}
