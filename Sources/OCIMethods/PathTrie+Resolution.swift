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
    /// the resolution fails, as the kernel's does (`ELOOP`).
    func resolve(_ path: String, hops: Int) throws(ArchiveError) -> (path: String, node: Int, hops: Int)? {
        var pending = Array(Self.components(path).reversed())
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
                pending.append(contentsOf: Self.components(target).reversed())
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
    func placement(of path: String) throws(ArchiveError) -> String {
        var path = path
        var walked = 0
        while true {
            let before = walked
            path = try walkLinks(path, &walked)
            if walked == before { return ArchivePath.clean(path) }
        }
    }

    /// One walk over `path`: its directory, then its last name.
    private func walkLinks(_ path: String, _ walked: inout Int) throws(ArchiveError) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else {
            return try walkLink(path, &walked).path
        }
        let directory = String(path[...slash])
        let name = String(path[path.utf8.index(after: slash)...])
        if name.isEmpty {
            return directory == "/" ? "/" : try walkLinks(String(directory.dropLast()), &walked)
        }
        let walkedDirectory = try walkLinks(directory, &walked)
        let (next, isLink) = try walkLink(Self.join(walkedDirectory, name), &walked)
        guard isLink, !next.hasPrefix("/") else { return next }
        return Self.join(walkedDirectory, next)
    }

    /// `path` from the root, or the target of the link there.
    private func walkLink(_ path: String, _ walked: inout Int) throws(ArchiveError) -> (path: String, isLink: Bool) {
        let relative = ArchivePath.clean(path)
        guard relative != "." else { return ("/", false) }
        if let node = node(at: relative), case .symlink(let target) = standing(node) {
            walked += 1
            guard walked <= LinkFollower.maxHops else { throw LinkFollower.tooManyLinks(relative) }
            return (target, true)
        }
        return ("/" + relative, false)
    }

    /// Two paths joined and cleaned as Go's `filepath.Join` does: a
    /// relative result keeps its leading `..`, a rooted one never goes
    /// above the root.
    static func join(_ first: String, _ second: String) -> String {
        let joined = first.isEmpty ? second : first + "/" + second
        let isRooted = joined.hasPrefix("/")
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            if part == ".." {
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !isRooted {
                    parts.append(part)
                }
                continue
            }
            parts.append(part)
        }
        let body = parts.joined(separator: "/")
        return isRooted ? "/" + body : body.isEmpty ? "." : body
    }
}
