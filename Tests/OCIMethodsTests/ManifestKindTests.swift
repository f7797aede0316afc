import JSON
import Registry
import Testing
@testable import OCIMethods

/// What `text` served as `mediaType` is read as; nil when it is refused.
private func kind(_ mediaType: String, _ text: String) throws -> ManifestKind? {
    let fetched = FetchedManifest(bytes: Array(text.utf8), mediaType: mediaType)
    let ref = try ImageReference.parse("r.test/app:v1")
    return try JSONTape.parse(fetched.bytes).withRoot { root in try? ManifestKind.of(fetched, root, ref: ref) }
}

private let oci = ManifestMediaType.ociManifest
private let index = ManifestMediaType.ociIndex
private let docker = ManifestMediaType.dockerManifest
private let list = ManifestMediaType.dockerManifestList

@Suite struct ManifestKindTests {
    /// The `Content-Type` first, then the declared type, then the fields.
    @Test(arguments: [
        (oci, #"{"layers":[]}"#, ManifestKind.image),
        (docker, #"{"config":{}}"#, .image),
        (index, #"{"manifests":[]}"#, .index),
        (list, #"{}"#, .index),
        ("application/json", #"{"mediaType":"\#(index)","manifests":[]}"#, .index),
        ("application/json", #"{"mediaType":"\#(oci)","layers":[]}"#, .image),
        ("application/json", #"{"mediaType":"application/x-unknown"}"#, .image),
        ("", #"{"manifests":[]}"#, .index),
        ("", #"{"layers":[]}"#, .image),
        ("", #"{}"#, .image),
        (oci, #"{"mediaType":"\#(oci)","schemaVersion":2}"#, .image),
    ])
    func aManifestIsReadAsWhatItsSignsSay(mediaType: String, text: String, expected: ManifestKind) throws {
        #expect(try kind(mediaType, text) == expected)
    }

    /// Both kinds at once, or schema 1: refused.
    @Test(arguments: [
        (oci, #"{"layers":[],"manifests":[]}"#),
        (index, #"{"layers":[],"manifests":[]}"#),
        ("", #"{"layers":[],"manifests":[]}"#),
        (oci, #"{"manifests":null}"#),
        (oci, #"{"mediaType":"\#(index)"}"#),
        (docker, #"{"mediaType":"\#(list)"}"#),
        (index, #"{"mediaType":"\#(oci)"}"#),
        (index, #"{"config":{}}"#),
        (list, #"{"layers":[]}"#),
        ("application/json", #"{"mediaType":"\#(index)","layers":[]}"#),
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", #"{"layers":[]}"#),
        ("Application/Vnd.Docker.Distribution.Manifest.V1+Json", #"{}"#),
        (oci, #"{"schemaVersion":1,"layers":[]}"#),
        ("application/json", #"{"fsLayers":[]}"#),
        (index, #"{"schemaVersion":1,"manifests":[]}"#),
    ])
    func aDocumentOfBothKindsOrSchema1IsRefused(mediaType: String, text: String) throws {
        #expect(try kind(mediaType, text) == nil)
    }
}
