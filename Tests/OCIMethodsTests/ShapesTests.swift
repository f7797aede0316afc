import JSON
import Testing
@testable import OCIMethods

@Suite struct ShapesTests {
    @Test func descriptorsHaveEveryKeyAndPlatformOnlyWhenPresent() throws {
        let bare = Shapes.descriptor(["mediaType": "m", "size": 3, "digest": "sha256:x"])
        #expect(
            bare == [
                "mediaType": "m", "size": 3, "digest": "sha256:x", "data": "", "urls": [], "annotations": [:],
                "artifactType": "",
            ])
        let full = Shapes.descriptor([
            "mediaType": "m", "size": 3, "digest": "sha256:x", "data": "aGVsbG8=", "urls": ["u"],
            "annotations": ["k": "v"], "artifactType": "a", "platform": ["os": "linux", "architecture": "arm64"],
        ])
        #expect(full["data"] == "hello")
        #expect(
            full["platform"] == [
                "architecture": "arm64", "os": "linux", "os.version": "", "os.features": [], "variant": "",
                "features": [],
            ])
    }

    @Test func manifestsGetSubjectOnlyWhenTheyHaveOne() throws {
        let manifest: JSONValue = ["schemaVersion": 2, "config": ["digest": "sha256:c", "size": 2, "mediaType": "c"]]
        let shaped = Shapes.manifest(manifest)
        #expect(shaped.objectValue?.keys == ["schemaVersion", "mediaType", "config", "layers", "annotations"])
        #expect(shaped["mediaType"] == "")
        var withSubject = manifest.objectValue!
        withSubject["subject"] = ["digest": "sha256:s", "size": 5, "mediaType": "m"]
        #expect(Shapes.manifest(.object(withSubject))["subject"]?["digest"] == "sha256:s")
    }

    /// A key given twice keeps its first place and its last string (what a
    /// lookup of it sees); members that are not strings are left out.
    /// Checked on a small map and on one large enough to be hashed.
    @Test(arguments: [0, 40])
    func repeatedAnnotationKeysKeepTheirFirstPlaceAndTheirLastString(padding: Int) throws {
        var annotations = JSONObject()
        annotations.append("a", "1")
        annotations.append("b", "2")
        for i in 0..<padding { annotations.append("p\(i)", "x") }
        annotations.append("a", 3)
        annotations.append("c", ["not": "a string"])
        annotations.append("a", "4")
        annotations.append("b", "5")
        let shaped = Shapes.manifest(["annotations": .object(annotations)])
        let expected = ["a": "4", "b": "5"].merging((0..<padding).map { ("p\($0)", "x") }) { a, _ in a }
        let keys = try #require(shaped["annotations"]?.objectValue?.keys)
        #expect(keys == ["a", "b"] + (0..<padding).map { "p\($0)" })
        for (key, value) in expected { #expect(shaped["annotations"]?[key]?.stringValue == value) }
    }

    /// A hostile manifest of 400,000 annotations (about the 4 MiB a
    /// manifest may be): shaped in linear time. Looking each key up in
    /// the ones before it took 42 s for a tenth of that.
    @Test func aManifestOfHundredsOfThousandsOfAnnotationsIsShapedInLinearTime() throws {
        var text = #"{"schemaVersion":2,"annotations":{"#
        for i in 0..<400_000 { text += (i > 0 ? "," : "") + #""k\#(i)":"v""# }
        text += "}}"
        let document = try JSONParser.parse(text)
        let clock = ContinuousClock()
        var shaped: JSONValue = nil
        let elapsed = clock.measure { shaped = Shapes.manifest(document) }
        #expect(shaped["annotations"]?.objectValue?.count == 400_000)
        #expect(elapsed < .seconds(30))
    }

    static let platformCases: [(String, JSONValue, Bool)] = [
        ("linux/amd64", ["os": "linux", "architecture": "amd64"], true),
        ("linux/arm64", ["os": "linux", "architecture": "arm64", "variant": "v8"], true),
        ("linux/arm64/v8", ["os": "linux", "architecture": "arm64", "variant": "v8"], true),
        ("linux/arm/v7", ["os": "linux", "architecture": "arm", "variant": "v6"], false),
        ("linux/amd64", ["os": "windows", "architecture": "amd64"], false),
    ]

    @Test func platformsMatchIndexEntries() throws {
        for (asked, platform, matches) in Self.platformCases {
            #expect(try Platform(asked).matches(platform) == matches, "\(asked) vs \(platform.jsonText)")
        }
    }

    @Test func malformedPlatformsAreInvalidParams() {
        for text in ["linux", "linux/", "a/b/c/d", ""] {
            #expect(throws: (any Error).self) { try Platform(text) }
        }
    }
}
