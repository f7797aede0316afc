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
