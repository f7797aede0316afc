import Archive

/// Path resolution in the namespace a `PathTrie` holds: what a process in
/// the container reaches when it opens a path.
extension PathTrie {
    /// Resolves `path` in the namespace as the kernel does, from the root:
    /// each symbolic link met is replaced by its target (from the root when
    /// it is absolute, else from the link's directory), and `..` goes up
    /// from where the links before it led, never above the root. Returns
    /// the path reached, its node and the links followed in all; nil when
    /// the path leads nowhere (a name missing or whited out, a name under a
    /// file). `hops`: links followed before; past `LinkFollower.maxHops` in all
    /// the resolution fails, as the kernel's does (`ELOOP`). Every name
    /// walked, the links' targets included, is taken from `budget`.
    func resolve(_ path: String, hops: Int, budget: LinkWalkBudget) throws(ArchiveError) -> (
        path: String, node: Int, hops: Int
    )? {
        var pending = Array(Self.components(path).reversed())
        try budget.spend(pending.count)
        var names: [Substring] = []
        var nodes = [Self.root]
        var hops = hops
        while let name = pending.popLast() {
            if name == "." { continue }
            if name == ".." {
                if !names.isEmpty {
                    names.removeLast()
                    nodes.removeLast()
                }
                continue
            }
            guard let node = child(nodes[nodes.count - 1], name) else { return nil }
            switch standing(node) {
            case .symlink(let target):
                hops += 1
                guard hops <= LinkFollower.maxHops else { throw LinkFollower.tooManyLinks(path) }
                if target.hasPrefix("/") {
                    names = []
                    nodes = [Self.root]
                }
                let targetNames = Self.components(target)
                try budget.spend(targetNames.count)
                pending.append(contentsOf: targetNames.reversed())
            case nil where marks(node).contains(.deleted) && !marks(node).contains(.parent):
                // Whited out, and no layer above the whiteout (nor its own)
                // holds anything under it.
                return nil
            case nil, .directory:
                names.append(name)
                nodes.append(node)
            case .file, .hardlink, .other:
                // A name under a file leads nowhere (`ENOTDIR`).
                guard pending.isEmpty else { return nil }
                names.append(name)
                nodes.append(node)
            }
        }
        return (names.isEmpty ? "." : names.joined(separator: "/"), nodes[nodes.count - 1], hops)
    }
}

extension PathTrie {
    /// Where unpacking writes under the directory `path` (cleaned), when
    /// this trie holds the symbolic links unpacking made so far: the path
    /// containerd's `RootPath` (continuity) makes of it. It resolves the
    /// path's directory first, then its last name; a link met there is
    /// replaced by its target, joined to the directory already resolved and
    /// cleaned as a path (so `..` in a link's target is taken before the
    /// names before it are followed), except a link at the root, whose
    /// target is walked again name by name; the whole is walked again
    /// until no link is met. Never above the root. Past
    /// `LinkFollower.maxHops` links the call fails (containerd allows 255).
    ///
    /// Each walk is linear in the names it goes through, the links'
    /// targets included, and every name is taken from `budget`: however
    /// the links are crafted, what one call spends on them is bounded.
    func placement(of path: String, budget: LinkWalkBudget) throws(ArchiveError) -> String {
        var path = path
        var walked = 0
        while true {
            let before = walked
            path = try walk(path, &walked, budget: budget)
            if walked == before { return ArchivePath.clean(rooted: path) }
        }
    }

    /// A path as a walk holds it: cleaned as Go's `filepath.Clean` cleans
    /// it (a relative one keeps the `..` it starts with), each name with
    /// its node in the trie (nil when the trie has none there), so that
    /// looking up the path after one more name is one step.
    private struct WalkedPath {
        var isRooted: Bool
        /// The `..` a relative path starts with (ignored by a lookup, which
        /// is from the root and never above it).
        var climbs = 0
        var names: [Substring] = []
        var nodes: [Int?] = []

        /// The node the path ends at (the root when it is empty).
        var node: Int? { nodes.last ?? PathTrie.root }

        /// Takes one name as `filepath.Join` cleans it, and says how to
        /// undo it (`.` changes nothing; `..` drops a name or climbs).
        mutating func take(_ name: Substring, in trie: PathTrie) -> Undo {
            // `.` and `..` told by their bytes (a text comparison for every
            // name was a tenth of a deep walk).
            let utf8 = name.utf8
            let dots = utf8.count <= 2 && utf8.allSatisfy { $0 == UInt8(ascii: ".") } ? utf8.count : 0
            switch dots {
            case 1: return .nothing
            case 2:
                if let last = names.popLast() { return .restore(last, nodes.removeLast()) }
                if isRooted { return .nothing }
                climbs += 1
                return .unclimb
            default:
                let node = self.node.flatMap { trie.child($0, name) }
                names.append(name)
                nodes.append(node)
                return .drop
            }
        }

        enum Undo { case nothing, drop, unclimb, restore(Substring, Int?) }

        mutating func undo(_ undo: Undo) {
            switch undo {
            case .nothing: break
            case .drop:
                names.removeLast()
                nodes.removeLast()
            case .unclimb: climbs -= 1
            case .restore(let name, let node):
                names.append(name)
                nodes.append(node)
            }
        }

        /// `text` cleaned onto this path (`filepath.Join(self, text)`).
        mutating func join(_ text: Substring, in trie: PathTrie, budget: LinkWalkBudget) throws(ArchiveError) {
            let names = PathTrie.components(text)
            try budget.spend(names.count)
            for name in names { _ = take(name, in: trie) }
        }

        /// The path as text: rooted, or relative (`.` when empty).
        var text: String {
            guard climbs > 0 || !names.isEmpty else { return isRooted ? "/" : "." }
            // Written once as bytes: no string a name, no append of text.
            var text: [UInt8] = []
            text.reserveCapacity(names.reduce(1 + 3 * climbs) { $0 + $1.utf8.count + 1 })
            if isRooted { text.append(UInt8(ascii: "/")) }
            for climb in 0..<climbs {
                text.append(contentsOf: climb + 1 < climbs || !names.isEmpty ? Self.climbAndSlash : Self.climb)
            }
            for (place, name) in names.enumerated() {
                if place > 0 { text.append(UInt8(ascii: "/")) }
                text.append(contentsOf: name.utf8)
            }
            return String(decoding: text, as: UTF8.self)
        }

        private static let climb = Array("..".utf8)
        private static let climbAndSlash = Array("../".utf8)
    }

    /// One walk over `path` (continuity's `walkLinks`): its directory,
    /// then its last name, each name looked up from the root after the
    /// names before it were walked. The path walked is changed in place,
    /// name by name (a copy of it each name would make the walk quadratic).
    private func walk(_ path: String, _ walked: inout Int, budget: LinkWalkBudget) throws(ArchiveError) -> String {
        let names = Self.components(path)
        try budget.spend(names.count)
        guard let first = names.first else { return "/" }
        var current = WalkedPath(isRooted: true)
        // A link's target reached, as the link gives it; nil while `current` is where the walk is.
        var target: String?
        var rest = names[...]
        if !path.hasPrefix("/") {
            // A first name walked on its own: a link's target as it is.
            rest = names.dropFirst()
            target = try step(&current, first, &walked, keepsTarget: true, budget: budget)
        }
        for name in rest {
            if let reached = target {
                current = WalkedPath(isRooted: reached.hasPrefix("/"))
                try current.join(reached[...], in: self, budget: budget)
                target = nil
            }
            target = try step(&current, name, &walked, keepsTarget: false, budget: budget)
        }
        return target ?? current.text
    }

    /// From the directory `path`, one name (continuity's `walkLink` of the
    /// two joined): `path` becomes the path reached, from the root, when
    /// no link stands there, or the link's target joined to the directory
    /// when it is relative; else (an absolute target, or `keepsTarget`:
    /// a path's first name) the target is returned as the link gives it.
    private func step(
        _ path: inout WalkedPath, _ name: Substring, _ walked: inout Int, keepsTarget: Bool,
        budget: LinkWalkBudget
    ) throws(ArchiveError) -> String? {
        let undo = path.take(name, in: self)
        guard !path.names.isEmpty else {
            path = WalkedPath(isRooted: true)
            return nil
        }
        guard let node = path.node, case .symlink(let target) = standing(node) else {
            // From the root: a leading `..` is gone.
            path.isRooted = true
            path.climbs = 0
            return nil
        }
        walked += 1
        guard walked <= LinkFollower.maxHops else { throw LinkFollower.tooManyLinks(ArchivePath.clean(path.text)) }
        if keepsTarget || target.hasPrefix("/") { return target }
        path.undo(undo)
        try path.join(target[...], in: self, budget: budget)
        return nil
    }
}
