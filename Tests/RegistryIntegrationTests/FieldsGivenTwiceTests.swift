import Foundation
import Testing
import TestFixtures
@testable import Registry

/// Response header fields read as Go's HTTP client reads them, from a
/// registry (an in-process server: a real one never sends these) whose
/// HEAD answer gives a field twice or a length with a sign. Go reads a
/// field's first value (`Header.Get`), and fails the request on a
/// `Content-Length` that is not one decimal number. The server read the
/// last value, and answered `-5` as the size.
@Suite struct FieldsGivenTwiceTests {
    static let first = "sha256:" + String(repeating: "a", count: 64)
    static let last = "sha256:" + String(repeating: "b", count: 64)

    /// What `headManifest` reads of a HEAD answer with `fields` (written as
    /// they are, each on its line).
    static func head(_ fields: [(String, String)]) async throws -> Result<ManifestHead, RegistryError> {
        let server = try TestHTTPServer { _ in .endless(status: 200, headers: fields, limit: 0) }
        defer { server.stop() }
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        let reference = try ImageReference.parse("127.0.0.1:\(server.port)/app:v1")
        do {
            return .success(try await client.headManifest(reference))
        } catch {
            return .failure(error)
        }
    }

    @Test func aFieldGivenTwiceIsReadByItsFirstValue() async throws {
        let answer = try await Self.head([
            ("Content-Type", ManifestMediaType.ociManifest), ("Content-Type", ManifestMediaType.ociIndex),
            ("Docker-Content-Digest", Self.first), ("Docker-Content-Digest", Self.last), ("Content-Length", "5"),
            ("Content-Length", "5"),
        ])
        #expect(
            try answer.get()
                == ManifestHead(mediaType: ManifestMediaType.ociManifest, size: 5, digest: Digest(Self.first)!))
    }

    /// Of two challenges, the first of a scheme the client knows is
    /// answered, as go-containerregistry picks one: `Negotiate` then
    /// `Basic` is a basic challenge (first-value reading would stop at
    /// `Negotiate`), and `Basic` then `Bearer` too (last-value reading
    /// took `Bearer`).
    @Test(arguments: [
        ["Negotiate", #"Basic realm="r""#], [#"Basic realm="r""#, #"Bearer realm="http://127.0.0.1:1/t""#],
    ])
    func ofTwoChallengesTheFirstTheClientKnowsIsAnswered(challenges: [String]) async throws {
        let server = try TestHTTPServer { request in
            guard request.headers["authorization"] == "Basic " + Data("ann:pw".utf8).base64EncodedString() else {
                return .response(status: 401, headers: challenges.map { ("WWW-Authenticate", $0) }, body: [])
            }
            return .endless(
                status: 200,
                headers: [
                    ("Content-Type", ManifestMediaType.ociManifest), ("Docker-Content-Digest", Self.first),
                    ("Content-Length", "5"),
                ], limit: 0)
        }
        defer { server.stop() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-docker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let auth = Data("ann:pw".utf8).base64EncodedString()
        try Data(#"{"auths":{"127.0.0.1:\#(server.port)":{"auth":"\#(auth)"}}}"#.utf8)
            .write(to: dir.appendingPathComponent("config.json"))
        var configuration = RegistryClient.Configuration()
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path])
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        let head = try await client.headManifest(try ImageReference.parse("127.0.0.1:\(server.port)/app:v1"))
        #expect(head.digest == Digest(Self.first))
    }

    @Test(arguments: [["-5"], ["+5"], ["5", "7"], [" 0x5"], ["5 5"], [""]])
    func aLengthThatIsNotOneNumberFailsTheRequest(lengths: [String]) async throws {
        let answer = try await Self.head(
            [("Content-Type", ManifestMediaType.ociManifest), ("Docker-Content-Digest", Self.first)]
                + lengths.map { ("Content-Length", $0) })
        #expect(throws: RegistryError.self) { try answer.get() }
    }
}
