/// Cleaned paths (`a/b/c`) with marks, stored by component, so asking
/// whether a path or any of its ancestors carries a mark is one walk over
/// the path: linear in its length, however deep it is.
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
    }

    /// Node 0 is the root (`.`); children by component name.
    private var children: [[Substring: Int]] = [[:]]
    private var marks: [Mark] = [[]]

    mutating func insert(_ path: String, _ mark: Mark) {
        var node = 0
        if path != "." {
            for component in path.split(separator: "/") {
                if let child = children[node][component] {
                    node = child
                } else {
                    children.append([:])
                    marks.append([])
                    children[node][component] = children.count - 1
                    node = children.count - 1
                }
            }
        }
        marks[node].formUnion(mark)
    }

    /// Whether an upper layer hides `path`: it was seen or deleted, or an
    /// ancestor was deleted or made opaque.
    func hides(_ path: String) -> Bool {
        var node = 0
        if marks[0].contains(.opaque) { return true }
        let components = path.split(separator: "/")
        for (index, component) in components.enumerated() {
            guard let child = children[node][component] else { return false }
            node = child
            if index < components.count - 1 {
                if !marks[node].isDisjoint(with: [.deleted, .opaque]) { return true }
            }
        }
        return !marks[node].isDisjoint(with: [.seen, .deleted])
    }
}
