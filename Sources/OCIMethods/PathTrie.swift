import Archive

/// Cleaned paths (`a/b/c`) with marks, stored by component, so asking
/// whether a path or any of its ancestors carries a mark is one walk over
/// the path: linear in its length, however deep it is. Each path also
/// keeps what stands there (`Standing`), so the trie is the flattened
/// filesystem's namespace, which links are resolved in.
struct PathTrie {
    /// What an upper layer decided about a path.
    struct Mark: OptionSet {
        let rawValue: UInt8
        /// An entry of that name exists above.
        static let seen = Mark(rawValue: 1)
        /// A whiteout deleted it (and everything under it).
        static let deleted = Mark(rawValue: 2)
        /// A directory made opaque: everything under it is hidden.
        static let opaque = Mark(rawValue: 4)
        /// An entry that is not a directory (a file, a link) stands there
        /// above: nothing below it can be under it.
        static let notDirectory = Mark(rawValue: 8)
        /// An entry above is under it: the layer that holds that entry
        /// holds a directory here, without an entry of its own.
        static let parent = Mark(rawValue: 16)
    }

    /// What an entry is, as path resolution needs it.
    enum Standing: Equatable {
        case directory, file, hardlink, other
        /// A symbolic link, with its target as the entry gives it.
        case symlink(String)

        /// What `entry` stands as (a sparse file as `other`: it is not read).
        init(_ entry: TarEntry) { self.init(entry.kind, target: entry.linkName) }

        /// What an entry of `kind` stands as; `target`, a symbolic link's.
        init(_ kind: TarEntry.Kind, target: String) {
            switch kind {
            case .directory: self = .directory
            case .file: self = .file
            case .hardlink: self = .hardlink
            case .symlink: self = .symlink(target)
            case .sparse, .other: self = .other
            }
        }
    }

    /// Node 0 is the root (`.`); children by component name.
    private var children: [[Substring: Int]] = [[:]]
    private var marks: [Mark] = [[]]
    private var standings: [Standing?] = [nil]
    /// What the call remembers, which each new node adds to (none: a
    /// trie whose nodes another count bounds).
    private let remembered: RememberedEntries?

    /// An empty trie, its nodes counted into `remembered`.
    init(countingInto remembered: RememberedEntries? = nil) { self.remembered = remembered }

    /// The directory of the path found or made last, and its node: a
    /// layer's entries come directory by directory, so the next path is
    /// most often in the same one, found without walking from the root
    /// (an entry 2,000 names deep is then not 2,000 lookups again).
    /// Forgotten when `replace` cuts nodes off.
    private var lastDirectory: (path: Substring, node: Int)?

    /// Marks `path`, and each directory above it `parent`; `standing`,
    /// when given, replaces what stood there.
    mutating func insert(_ path: String, _ mark: Mark, standing: Standing? = nil) {
        let node = self.node(creating: path)
        marks[node].formUnion(mark)
        if let standing { standings[node] = standing }
    }

    /// Puts `standing` at `path`, and forgets what was under it: an entry
    /// that replaces another, as unpacking one layer replaces it.
    mutating func replace(_ path: String, with standing: Standing) {
        let node = self.node(creating: path)
        standings[node] = standing
        children[node] = [:]
        lastDirectory = nil
    }

    /// The node of `path`, made with the nodes above it when missing (each
    /// marked `parent`).
    private mutating func node(creating path: String) -> Int {
        guard path != "." else { return 0 }
        let utf8 = path.utf8
        let slash = utf8.lastIndex(of: UInt8(ascii: "/"))
        if let slash, let last = lastDirectory, utf8.index(after: slash) != utf8.endIndex,
            ArchiveName.same(path[..<slash], last.path)
        {
            marks[last.node].insert(.parent)
            return child(creating: path[utf8.index(after: slash)...], under: last.node)
        }
        var node = 0
        var directory = 0
        var previous: Int?
        let components = Self.components(path)
        for component in components {
            if let previous { marks[previous].insert(.parent) }
            directory = node
            node = child(creating: component, under: node)
            previous = node
        }
        // The directory's node: the one before the last name, when the
        // path ends in that name.
        if let slash, components.count > 1, components[components.count - 1].endIndex == path.endIndex {
            lastDirectory = (path[..<slash], directory)
        }
        return node
    }

    /// `node`'s child named `name`, made when missing.
    private mutating func child(creating name: Substring, under node: Int) -> Int {
        if let child = children[node][name] { return child }
        children.append([:])
        marks.append([])
        standings.append(nil)
        remembered?.add(RememberedEntries.nodeOverheadBytes)
        children[node][name] = children.count - 1
        return children.count - 1
    }

    /// Whether the root has a child named as `path`'s first component: if
    /// not, the trie holds nothing on the way to `path`.
    func holdsFirstComponent(of path: String) -> Bool {
        let end = path.utf8.firstIndex(of: UInt8(ascii: "/")) ?? path.endIndex
        return children[0][path[..<end]] != nil
    }

    /// The node of `path`, if the trie has one.
    func node(at path: String) -> Int? {
        var node = 0
        guard path != "." else { return node }
        for component in Self.components(path) {
            guard let child = children[node][component] else { return nil }
            node = child
        }
        return node
    }

    /// The root's node.
    static let root = 0

    /// `node`'s child named `name`, if the trie has one.
    func child(_ node: Int, _ name: Substring) -> Int? { children[node][name] }

    /// `node`'s children, by name.
    func children(of node: Int) -> [Substring: Int] { children[node] }

    /// What stands at `node`: the entry inserted there last, nil for a path
    /// only known as an ancestor or a whiteout's target.
    func standing(_ node: Int) -> Standing? { standings[node] }

    /// The marks at `node`.
    func marks(_ node: Int) -> Mark { marks[node] }

    /// Whether an upper layer hides `path`: it was seen, deleted or is a
    /// directory above an entry there, or an ancestor was deleted, made
    /// opaque, or is not a directory there.
    func hides(_ path: String) -> Bool { hiding(path) != .none }

    /// How the layers above hide a path.
    enum Hiding {
        /// They do not.
        case none
        /// By a directory there (an entry, or a directory holding one),
        /// which hides the path but not what lies under it.
        case directory
        /// By a directory there that only holds entries: no entry of
        /// its own stands at the path.
        case directoryWithoutEntry
        /// Wholly: the path and everything under it.
        case wholly
    }

    /// How the layers above hide `path`.
    func hiding(_ path: String) -> Hiding {
        var node = 0
        if marks[0].contains(.opaque) { return .wholly }
        var components = Self.components(path).makeIterator()
        var next = components.next()
        while let component = next {
            guard let child = children[node][component] else { return .none }
            node = child
            next = components.next()
            // An ancestor deleted or made opaque hides everything below it.
            if next != nil && !marks[node].isDisjoint(with: [.deleted, .opaque, .notDirectory]) { return .wholly }
        }
        if !marks[node].isDisjoint(with: [.deleted, .notDirectory]) { return .wholly }
        if marks[node].contains(.seen) { return .directory }
        return marks[node].contains(.parent) ? .directoryWithoutEntry : .none
    }

    /// How the layers above stand on a directory, for `hiding(_:after:)`.
    enum DirectoryStanding {
        /// They hold nothing on the way there: nothing under it is hidden.
        case absent
        /// They hide it wholly, and everything under it.
        case hidden
        /// Its node, reached through directories that hide nothing under them.
        case node(Int)
    }

    /// How the layers above stand on `directory` (cleaned; `.` the root).
    func standing(ofDirectory directory: Substring) -> DirectoryStanding {
        if marks[0].contains(.opaque) { return .hidden }
        var node = 0
        guard directory != "." else { return .node(node) }
        for component in Self.components(directory) {
            guard let child = children[node][component] else { return .absent }
            node = child
            if !marks[node].isDisjoint(with: [.deleted, .opaque, .notDirectory]) { return .hidden }
        }
        return .node(node)
    }

    /// How the layers above hide `path`, the directory it is in found
    /// through `last` when it is the one `last` holds (a layer's entries
    /// come directory by directory, so most are): the same as
    /// `hiding(_:)`, without walking from the root for each entry. Valid
    /// while the trie does not change.
    func hiding(_ path: String, after last: inout (directory: Substring, standing: DirectoryStanding)?) -> Hiding {
        let utf8 = path.utf8
        let slash = utf8.lastIndex(of: UInt8(ascii: "/"))
        let directory = slash.map { path[..<$0] } ?? "."
        let name = slash.map { path[utf8.index(after: $0)...] } ?? path[...]
        let standing: DirectoryStanding
        if let last, ArchiveName.same(last.directory, directory) {
            standing = last.standing
        } else {
            standing = self.standing(ofDirectory: directory)
            last = (directory, standing)
        }
        switch standing {
        case .absent: return .none
        case .hidden: return .wholly
        case .node(let parent):
            guard !name.isEmpty else { return hiding(path) }
            guard let node = children[parent][name] else { return .none }
            if !marks[node].isDisjoint(with: [.deleted, .notDirectory]) { return .wholly }
            if marks[node].contains(.seen) { return .directory }
            return marks[node].contains(.parent) ? .directoryWithoutEntry : .none
        }
    }

    /// The `/`-separated components of `path`, found on its UTF-8 bytes.
    static func components(_ path: String) -> [Substring] { components(path[...]) }

    /// The `/`-separated components of `path`, found on its UTF-8 bytes.
    static func components(_ path: Substring) -> [Substring] {
        var result: [Substring] = []
        var start = path.startIndex
        let utf8 = path.utf8
        var index = utf8.startIndex
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                if start != index { result.append(path[start..<index]) }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        if start != path.endIndex { result.append(path[start...]) }
        return result
    }
}
