import Archive
import Testing
import TestFixtures
@testable import OCIMethods

/// `GoCase` and `ArchiveName.readable` beside Go's `strings` package and
/// its reading of runes (`Tests/GoReaders`, `case`): the original matches
/// `image_files` directories and extensions with `strings.EqualFold`,
/// containerd lowers platforms with `strings.ToLower`, and Go's
/// `encoding/json` writes a name's invalid bytes as U+FFFD each.
@Suite struct GoCaseParity {
    /// Foldings that Unicode gave scalars it already had, after 13.0
    /// (CaseFolding.txt): left out where Go's tables are older.
    static let laterFoldings: [(version: (Int, Int), scalars: [UInt32])] = [
        ((14, 0), [0x1FD3, 0x0390, 0x1FE3, 0x03B0]),
        ((15, 1), [0xFB05, 0xFB06]),
    ]

    /// Go's reading, waited on from a thread of its own (the program runs
    /// for seconds), never from one of the few threads every test's tasks
    /// share.
    static func letterCase(_ texts: [[UInt8]]) async throws -> [GoReaders.LetterCase] {
        try await onThreadOfItsOwn { Result { try GoReaders.letterCase(texts) } }.get()
    }

    /// Every scalar that Go's tables know (those of its Unicode version
    /// or older) is lowered as `strings.ToLower` lowers it, and two have
    /// one fold key exactly when `strings.EqualFold` takes them for one.
    @Test func everyScalarIsLoweredAndFoldedAsGoLowersAndFoldsIt() async throws {
        let probe = try #require(try await Self.letterCase([[]]).first)
        let parts = probe.unicode.split(separator: ".").map { Int($0) ?? 0 }
        let version = (parts.first ?? 0, parts.dropFirst().first ?? 0)
        let scalars = (0...0x10FFFF).compactMap(Unicode.Scalar.init).filter { scalar in
            scalar.properties.age.map { ($0.major, $0.minor) <= version } ?? false
        }
        let text = String(String.UnicodeScalarView(scalars))
        let go = try #require(try await Self.letterCase([Array(text.utf8)]).first)
        let lowered = Array(String(decoding: go.lowered, as: UTF8.self).unicodeScalars)
        let folded = Array(String(decoding: go.folded, as: UTF8.self).unicodeScalars)
        try #require(lowered.count == scalars.count && folded.count == scalars.count)
        let skipped = Set(Self.laterFoldings.filter { $0.version > version }.flatMap(\.scalars))

        var wrong: [String] = []
        var keyOfGoFold: [UInt32: String] = [:]
        var goFoldOfKey: [String: UInt32] = [:]
        for (index, scalar) in scalars.enumerated() {
            let name = "U+" + String(scalar.value, radix: 16, uppercase: true)
            if !GoCase.lowercased(String(scalar)).unicodeScalars.elementsEqual([lowered[index]]) {
                wrong.append("\(name) lowered")
            }
            guard !skipped.contains(scalar.value) else { continue }
            // Held text: compared by its bytes, never by canonical equivalence.
            let key = GoCase.foldKey(ofHeld: ArchiveName.held(String(scalar)))
            let goFold = folded[index].value
            if let known = keyOfGoFold[goFold], known != key { wrong.append("\(name) folded apart from its orbit") }
            if let known = goFoldOfKey[key], known != goFold { wrong.append("\(name) folded with another orbit") }
            keyOfGoFold[goFold] = key
            goFoldOfKey[key] = goFold
        }
        #expect(scalars.count > 100_000)
        #expect(wrong.isEmpty, "\(wrong.count): \(wrong.prefix(20))")
    }

    /// Names drawn from letters whose case Go and Swift read differently,
    /// and from invalid and cut-short sequences: each is read as Go reads
    /// its runes, and two have one fold key exactly when
    /// `strings.EqualFold` takes them for one.
    @Test func drawnNamesAreReadAndFoldedAsGoReadsAndFoldsThem() async throws {
        let groups: [[[UInt8]]] = [
            ["s", "S", "\u{17F}"], ["k", "K", "\u{212A}"], ["i", "I", "\u{130}", "\u{131}"],
            ["\u{DF}", "\u{1E9E}", "ss", "SS"], ["\u{3C3}", "\u{3A3}", "\u{3C2}"], ["\u{E9}", "\u{C9}", "e\u{301}"],
            ["\u{1C5}", "\u{1C6}", "\u{1C4}"], ["\u{3B9}", "\u{345}", "\u{1FBE}", "\u{399}"], ["a", "A"], ["/", "."],
        ].map { $0.map { Array($0.utf8) } }
        let invalid: [[UInt8]] = [
            Array("\u{FFFD}".utf8), [0xFF], [0xFE], [0xC0], [0xC0, 0x80], [0xE2, 0x82], [0xED, 0xA0, 0x80],
            [0xF0, 0x9F, 0x98], [0xF4, 0x90, 0x80, 0x80], [0xFF, 0xFE], Array("\u{FFFD}\u{FFFD}".utf8),
        ]
        var random = SeededGenerator(seed: 0xCA5E)
        var pairs: [([UInt8], [UInt8])] = []
        for _ in 0..<1_500 {
            var (first, second): ([UInt8], [UInt8]) = ([], [])
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let group =
                    Int.random(in: 0...groups.count, using: &random) < groups.count
                    ? groups[Int.random(in: 0..<groups.count, using: &random)] : invalid
                first += group[Int.random(in: 0..<group.count, using: &random)]
                second += group[Int.random(in: 0..<group.count, using: &random)]
            }
            pairs.append((first, second))
        }
        let go = try await Self.letterCase(pairs.flatMap { [$0.0, $0.1] })
        var (wrong, equal, unequal) = ([String](), 0, 0)
        for (index, (first, second)) in pairs.enumerated() {
            let (goFirst, goSecond) = (go[2 * index], go[2 * index + 1])
            let (heldFirst, heldSecond) = (ArchiveName.held(first), ArchiveName.held(second))
            for (held, bytes, goCase) in [(heldFirst, first, goFirst), (heldSecond, second, goSecond)]
            where Array(ArchiveName.readable(held).utf8) != goCase.runes {
                wrong.append("read \(bytes)")
            }
            let goEqual = goFirst.folded == goSecond.folded
            if goEqual { equal += 1 } else { unequal += 1 }
            if (GoCase.foldKey(ofHeld: heldFirst) == GoCase.foldKey(ofHeld: heldSecond)) != goEqual {
                wrong.append("\(first) \(goEqual ? "==" : "!=") \(second) to Go")
            }
        }
        // Both answers are drawn often enough to tell.
        #expect(equal > 100 && unequal > 100)
        #expect(wrong.isEmpty, "\(wrong.count): \(wrong.prefix(10))")
    }
}
