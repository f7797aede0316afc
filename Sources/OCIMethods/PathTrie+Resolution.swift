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
            case nil where marks(node).contains(.deleted):
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
