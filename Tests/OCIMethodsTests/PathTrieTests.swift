import Testing
import TestFixtures

@testable import OCIMethods

/// The namespace the layers above make, and its shortcuts.
@Suite struct PathTrieTests {
    /// Whether a path is hidden, found through the directory found last,
    /// is what a walk from the root finds: on tries of random marks, for
    /// paths in the order a layer might list them (runs of one directory,
    /// then jumps).
    @Test func hidingThroughTheLastDirectoryIsHidingFromTheRoot() {
        var random = SeededGenerator(seed: 0x7121_2026)
        let names = ["a", "b", "c", "a/b", "a/c", "b/a", "a/b/c", "a/b/a", "c/c/c", "b/b", "a/a/a/a"]
        let marks: [PathTrie.Mark] = [.seen, .deleted, .opaque, .notDirectory, [.seen, .opaque], [.deleted, .parent]]
        var compared = 0
        var hidden = 0
        for _ in 0..<300 {
            var trie = PathTrie()
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                trie.insert(names.randomElement(using: &random)!, marks.randomElement(using: &random)!)
            }
            if Int.random(in: 0..<10, using: &random) == 0 { trie.insert(".", .opaque) }
            var last: (directory: Substring, standing: PathTrie.DirectoryStanding)?
            var directory = names.randomElement(using: &random)!
            for _ in 0..<40 {
                if Int.random(in: 0..<4, using: &random) == 0 { directory = names.randomElement(using: &random)! }
                let path =
                    Bool.random(using: &random)
                    ? directory : directory + "/" + ["x", "a", "b", "c"].randomElement(using: &random)!
                let found = trie.hiding(path, after: &last)
                #expect(found == trie.hiding(path), "\(path)")
                compared += 1
                if found != .none { hidden += 1 }
            }
        }
        // The draw reaches hidden paths and visible ones.
        #expect(hidden > 1_000 && compared - hidden > 1_000)
    }
}
