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
        /// An entry that is not a directory (a file, a link) stands there
        /// above: nothing below it can be under it.
        static let notDirectory = Mark(rawValue: 8)
    }

    /// Node 0 is the root (`.`); children by component name.
    private var children: [[Substring: Int]] = [[:]]
    private var marks: [Mark] = [[]]

    mutating func insert(_ path: String, _ mark: Mark) {
        var node = 0
        if path != "." {
            for component in Self.components(path) {
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
    /// ancestor was deleted, made opaque, or is not a directory there.
    func hides(_ path: String) -> Bool {
        var node = 0
        if marks[0].contains(.opaque) { return true }
        var components = Self.components(path).makeIterator()
        var next = components.next()
        while let component = next {
            guard let child = children[node][component] else { return false }
            node = child
            next = components.next()
            // An ancestor deleted or made opaque hides everything below it.
            if next != nil && !marks[node].isDisjoint(with: [.deleted, .opaque, .notDirectory]) { return true }
        }
        return !marks[node].isDisjoint(with: [.seen, .deleted, .notDirectory])
    }

    /// The `/`-separated components of `path`, found on its UTF-8 bytes.
    static func components(_ path: String) -> [Substring] {
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
