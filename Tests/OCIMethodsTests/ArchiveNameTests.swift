import Archive
import JSON
import Testing
import TestFixtures

@testable import OCIMethods

/// Names are bytes: two names that differ only in how their characters
/// are composed (`é` precomposed, or `e` and a combining accent), or only
/// in bytes that are not UTF-8, are two files to a runtime, and to
/// `image_files` and `blob_files`. Compared as text, a whiteout of one
/// spelling hid the other, which the container still has, and two such
/// files showed as one.
@Suite struct ArchiveNameTests {
    static let composed = "etc/caf\u{E9}.yaml"
    static let decomposed = "etc/cafe\u{301}.yaml"

    /// The members of an answer: each key's bytes, and its value's text.
    static func members(_ answer: JSONValue) -> [([UInt8], String)] {
        (answer.objectValue?.members ?? []).map { (Array($0.key.utf8), $0.value.jsonText) }
    }

    /// `archive` with the ASCII `placeholder` in a header's name field
    /// replaced by `bytes` (as long), its checksum made right again.
    static func renaming(_ archive: [UInt8], _ placeholder: String, to bytes: [UInt8]) -> [UInt8] {
        let wanted = Array(placeholder.utf8)
        var archive = archive
        for block in stride(from: 0, to: archive.count, by: 512)
        where archive[block..<block + wanted.count].elementsEqual(wanted) {
            archive.replaceSubrange(block..<block + bytes.count, with: bytes)
            for index in 148..<156 { archive[block + index] = UInt8(ascii: " ") }
            let sum = archive[block..<block + 512].reduce(0) { $0 + Int($1) }
            let digits = Array(String(sum, radix: 8).utf8)
            let field =
                [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, UInt8(ascii: " ")]
            archive.replaceSubrange(block + 148..<block + 156, with: field)
        }
        return archive
    }

    @Test func aWhiteoutOfAnotherSpellingHidesNothing() throws {
        var lower = TarBuilder()
        lower.file(Self.composed, "a: 1")
        var upper = TarBuilder()
        upper.file("etc/.wh.cafe\u{301}.yaml", "")
        let answer = try LayerFlattener.files(
            ofLayers: [upper.archive, lower.archive], paths: ["etc"], maxEntryBytes: 1 << 20
        ).files
        #expect(Self.members(answer).map(\.0) == [Array(Self.composed.utf8)])
    }

    @Test func twoSpellingsAreTwoFilesSortedByTheirBytes() throws {
        var layer = TarBuilder()
        layer.file(Self.composed, "a: 1")
        layer.file(Self.decomposed, "a: 2")
        let answer = try LayerFlattener.files(ofLayers: [layer.archive], paths: ["etc"], maxEntryBytes: 1 << 20).files
        // `e` (0x65) sorts before `é` (0xC3 0xA9), as Go sorts a map's keys.
        let expected = [(Array(Self.decomposed.utf8), #"{"a":2}"#), (Array(Self.composed.utf8), #"{"a":1}"#)]
        #expect(Self.members(answer).map(\.0) == expected.map(\.0))
        #expect(Self.members(answer).map(\.1) == expected.map(\.1))
        // `blob_files` reads each name asked for by its bytes.
        let read = try BlobFiles.files(ofArchive: layer.archive, paths: [Self.composed], maxEntryBytes: 1 << 20)
        #expect(Self.members(read).map(\.0) == [Array(Self.composed.utf8)])
        #expect(Self.members(read).map(\.1) == [#"{"a":1}"#])
    }

    /// Bytes that are not UTF-8 were all read as U+FFFD, so any two such
    /// names of one length were one. The answer writes them as Go writes
    /// them (U+FFFD), but a whiteout of one no longer hides the other.
    @Test func namesThatAreNotUTF8AreToldApart() throws {
        var lower = TarBuilder()
        lower.file("etc/X.yaml", "a: 1")
        var upper = TarBuilder()
        upper.file("etc/.wh.Y.yaml", "")
        let lowerArchive = Self.renaming(
            lower.archive, "etc/X.yaml", to: Array("etc/".utf8) + [0xFF] + Array(".yaml".utf8))
        let upperArchive = Self.renaming(
            upper.archive, "etc/.wh.Y.yaml", to: Array("etc/.wh.".utf8) + [0xFE] + Array(".yaml".utf8))
        let answer = try LayerFlattener.files(
            ofLayers: [upperArchive, lowerArchive], paths: ["etc"], maxEntryBytes: 1 << 20
        ).files
        #expect(Self.members(answer).map(\.0) == [Array("etc/\u{FFFD}.yaml".utf8)])
        #expect(Self.members(answer).map(\.1) == [#"{"a":1}"#])
    }

    /// Two files whose names differ only where they are not UTF-8 (or where
    /// one has U+FFFD) are written under one name: a client keeps one and
    /// drops the other, which the container still has. The call fails
    /// instead, naming both; one such file alone is answered.
    @Test func twoFilesWrittenUnderOneNameFailTheCall() throws {
        for other in ["etc/\u{F7FE}.yaml", "etc/\u{FFFD}.yaml"] {
            var layer = TarBuilder(nameBytes: ArchiveName.bytes(of:))
            layer.file("etc/\u{F7FF}.yaml", "allow: false")
            layer.file(other, "allow: true")
            #expect {
                try LayerFlattener.files(ofLayers: [layer.archive], paths: ["etc"], maxEntryBytes: 1 << 20)
            } throws: { error in
                let message = (error as? ArchiveError)?.message ?? ""
                return message.contains("names two files") && message.contains("6574632fff2e79616d6c")
                    && message.contains(Self.hex(ArchiveName.bytes(of: other)))
            }
            var alone = TarBuilder(nameBytes: ArchiveName.bytes(of:))
            alone.file(other, "allow: true")
            alone.file("etc/\u{F7FF}.json", "{}")
            let answer = try LayerFlattener.files(ofLayers: [alone.archive], paths: ["etc"], maxEntryBytes: 1 << 20)
                .files
            #expect(Self.members(answer).count == 2)
        }
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// A directory asked for matches the layers' directories by its bytes,
    /// case aside (as Go's `strings.EqualFold` sets it aside).
    @Test func aDirectoryAskedForIsMatchedByItsBytesCaseAside() throws {
        var layer = TarBuilder()
        layer.file("caf\u{E9}/a.yaml", "a: 1")
        layer.file("cafe\u{301}/b.yaml", "b: 1")
        layer.file("CAF\u{C9}/c.yaml", "c: 1")
        let answer = try LayerFlattener.files(
            ofLayers: [layer.archive], paths: ["caf\u{E9}"], maxEntryBytes: 1 << 20
        ).files
        #expect(Self.members(answer).map(\.0) == [Array("CAF\u{C9}/c.yaml".utf8), Array("caf\u{E9}/a.yaml".utf8)])
    }

    /// Directories and extensions are matched as the original matches
    /// them, with Go's `strings.EqualFold`: `ſ` is `s`, the Kelvin sign
    /// `k`, `İ` and `ı` are neither `i` nor `I`. Before, in Swift's lower
    /// case, `manifests/x.jſon`, which the original reads, was left out.
    @Test func directoriesAndExtensionsAreMatchedAsGoFoldsTheirCase() throws {
        var layer = TarBuilder()
        for name in [
            "manifests/a.yaml", "MANIFESTS/b.YML", "manife\u{17F}ts/c.json", "manifests/d.j\u{17F}on",
            "manifests/e.JSON", "man\u{130}fests/f.yaml", "man\u{131}fests/g.yaml", "manifests/h.yam",
            "\u{212A}ustomize/i.yaml", "kustomize/j.y\u{130}ml",
        ] {
            layer.file(name, "a: 1")
        }
        let answer = try LayerFlattener.files(
            ofLayers: [layer.archive], paths: ["manifests", "kustomize"], maxEntryBytes: 1 << 20
        ).files
        let names = Self.members(answer).map { String(decoding: $0.0, as: UTF8.self) }
        #expect(
            Set(names) == [
                "manifests/a.yaml", "MANIFESTS/b.YML", "manife\u{17F}ts/c.json", "manifests/d.j\u{17F}on",
                "manifests/e.JSON", "\u{212A}ustomize/i.yaml",
            ])
    }

    /// To the match, and in the answer's keys, each byte of a name that is
    /// not UTF-8 is one U+FFFD, as Go reads and writes it: `x\xE2\x82` (a
    /// sequence cut short) is two of them.
    @Test func aDirectorysInvalidBytesAreMatchedAsGoReadsThem() throws {
        var layer = TarBuilder(nameBytes: ArchiveName.bytes(of:))
        layer.file("x\u{F7FF}/a.yaml", "a: 1")
        layer.file("x\u{F7E2}\u{F782}/b.yaml", "b: 1")
        for (asked, found) in [("x\u{FFFD}", "a"), ("x\u{FFFD}\u{FFFD}", "b")] {
            let answer = try LayerFlattener.files(ofLayers: [layer.archive], paths: [asked], maxEntryBytes: 1 << 20)
                .files
            #expect(Self.members(answer).map(\.0) == [Array("\(asked)/\(found).yaml".utf8)])
        }
    }

    /// The paths of a call, as the key its answer is kept by: two
    /// spellings are two paths, so a call asking for one never gets the
    /// answer kept for both.
    @Test func pathsAskedForAreKeyedByTheirBytes() {
        // By bytes: `==` on text would equate the two spellings in either order.
        #expect(
            Array(MethodTable.pathsKey(["caf\u{E9}", "cafe\u{301}"]).utf8)
                == Array("[\"cafe\u{301}\",\"caf\u{E9}\"]".utf8))
        #expect(Array(MethodTable.pathsKey(["caf\u{E9}", "caf\u{E9}"]).utf8) == Array("[\"caf\u{E9}\"]".utf8))
        #expect(
            Array(MethodTable.pathsKey(["caf\u{E9}"]).utf8) != Array(MethodTable.pathsKey(["cafe\u{301}"]).utf8))
    }

    @Test func heldNamesKeepTheirBytesAndReadAsUTF8() {
        for bytes: [UInt8] in [
            Array("plain/name".utf8), Array(Self.composed.utf8), [0x61, 0xFF, 0xC3], [0xEF, 0x9E, 0x80],
        ] {
            let held = ArchiveName.held(bytes)
            #expect(ArchiveName.byteCount(held) == bytes.count)
            #expect(ArchiveName.readable(held) == String(decoding: bytes, as: UTF8.self))
        }
        #expect(ArchiveName.held(Array(Self.composed.utf8)) != ArchiveName.held(Array(Self.decomposed.utf8)))
    }
}
