import Archive
import JSON
import Testing
import TestFixtures
@testable import OCIMethods

@Suite struct LayerFlattenerTests {
    /// Applies layers given bottom first (as a manifest lists them).
    private func flatten(_ layers: [TarBuilder], paths: [String]) throws -> JSONValue {
        var flattener = LayerFlattener(paths: paths, maxEntryBytes: 1 << 20)
        for layer in layers.reversed() {
            try flattener.apply(TarReader(MemoryByteStream(layer.archive)))
        }
        return flattener.result
    }

    @Test func laterLayersWinAndWhiteoutsAndOpaqueDirectoriesHideEarlierFiles() throws {
        var bottom = TarBuilder()
        bottom.file("policy/keep.yaml", "v: bottom")
        bottom.file("policy/override.yaml", "v: bottom")
        bottom.file("policy/deleted.json", #"{"v":"bottom"}"#)
        bottom.file("opaque/gone.yaml", "v: bottom")
        var middle = TarBuilder()
        middle.file("policy/.wh.deleted.json", "")
        middle.file("opaque/.wh..wh..opq", "")
        middle.file("opaque/fresh.yml", "v: middle")
        var top = TarBuilder()
        top.file("./policy/override.yaml", "v: top")
        let result = try flatten([bottom, middle, top], paths: ["policy", "opaque"])
        let expected: JSONValue = [
            "policy/override.yaml": ["v": "top"],
            "opaque/fresh.yml": ["v": "middle"],
            "policy/keep.yaml": ["v": "bottom"],
        ]
        #expect(Set(result.objectValue?.keys ?? []) == Set(expected.objectValue!.keys))
        for key in expected.objectValue!.keys { #expect(result[key] == expected[key], "\(key)") }
    }

    @Test func directoriesMatchCaseInsensitivelyAndOnlyYAMLOrJSONExtensions() throws {
        var layer = TarBuilder()
        layer.file("Data/a.YAML", "a: 1")
        layer.file("data/b.Json", #"{"b":2}"#)
        layer.file("data/c.txt", "c: 3")
        layer.file("data/noext", "d: 4")
        layer.file("data/sub/e.yaml", "e: 5")
        let result = try flatten([layer], paths: ["/DATA/"])
        #expect(result == ["Data/a.YAML": ["a": 1], "data/b.Json": ["b": 2]])
    }

    @Test func unparseableFilesAreSkippedButStillHideLowerOnes() throws {
        var bottom = TarBuilder()
        bottom.file("d/x.yaml", "ok: true")
        var top = TarBuilder()
        top.file("d/x.yaml", "bad: [unclosed")
        #expect(try flatten([bottom, top], paths: ["d"]) == [:])
    }

    @Test func aWhitedOutDirectoryHidesWhatWasInside() throws {
        var bottom = TarBuilder()
        bottom.file("d/sub/x.yaml", "x: 1")
        // (not `y:`, which go-yaml v2 reads as the key `true`)
        bottom.file("d/z.yaml", "z: 1")
        var top = TarBuilder()
        top.file("d/.wh.sub", "")
        let result = try flatten([bottom, top], paths: ["d/sub", "d"])
        #expect(result == ["d/z.yaml": ["z": 1]], "\(result.jsonText)")
    }
}
