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
    /// this trie holds the symbolic links unpacking made so far: each link
    /// met is replaced by its target (from the root when it is absolute,
    /// else joined to the directory it is in and cleaned as a path, as
    /// containerd's `RootPath` does), never above the root; what the trie
    /// does not hold is a directory unpacking makes. Past
    /// `LinkFollower.maxHops` links the call fails.
    func placement(of path: String) throws(ArchiveError) -> String {
        var path = path
        var hops = 0
        resolving: while true {
            let components = Self.components(path)
            var node: Int? = Self.root
            for (position, name) in components.enumerated() {
                guard let at = node, let child = child(at, name) else {
                    node = nil
                    continue
                }
                if case .symlink(let target) = standing(child) {
                    hops += 1
                    guard hops <= LinkFollower.maxHops else { throw LinkFollower.tooManyLinks(path) }
                    let directory = components[..<position].joined(separator: "/")
                    var next = target.hasPrefix("/") || directory.isEmpty ? target : directory + "/" + target
                    if position + 1 < components.count {
                        next += "/" + components[(position + 1)...].joined(separator: "/")
                    }
                    path = ArchivePath.clean(next)
                    continue resolving
                }
                node = child
            }
            return path
        }
    }
}
