import Reasons
import TestFixtures
import Foundation
import JSON
import Logging
import Testing
@testable import Registry

/// A small OCI image (config + one layer) pushed to `registry`.
private func pushImage(
    _ registry: TestRegistry, _ repository: String, tag: String,
    mediaType: String = ManifestMediaType.ociManifest
) async throws -> (manifest: Data, digest: String) {
    let config = Data(#"{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"b"}}}"#.utf8)
    let layer = Data("layer-\(repository)-\(tag)".utf8)
    let configDigest = try await registry.pushBlob(repository, config)
    let layerDigest = try await registry.pushBlob(repository, layer)
    let configType =
        mediaType == ManifestMediaType.ociManifest
        ? "application/vnd.oci.image.config.v1+json" : "application/vnd.docker.container.image.v1+json"
    let layerType =
        mediaType == ManifestMediaType.ociManifest
        ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.docker.image.rootfs.diff.tar.gzip"
    let manifest = Data(
        """
        {"schemaVersion":2,"mediaType":"\(mediaType)","config":{"mediaType":"\(configType)","size":\(config.count),"digest":"\(configDigest)"},"layers":[{"mediaType":"\(layerType)","size":\(layer.count),"digest":"\(layerDigest)"}]}
        """.utf8)
    let digest = try await registry.pushManifest(repository, tag, manifest, mediaType: mediaType)
    return (manifest, digest)
}

private func client(credentialsFor registry: TestRegistry? = nil, user: String = "", password: String = "") throws
    -> RegistryClient
{
    var configuration = RegistryClient.Configuration()
    configuration.transport.retries = 0
    if let registry {
        let dir = try DockerConfigDirectory.make(host: registry.host, user: user, password: password)
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path])
    }
    return RegistryClient(configuration: configuration, logger: .disabled)
}

@Suite(.serialized, .needsDockerRegistry) struct ManifestFetchAgainstARealRegistry {
    @Test func tagAndDigestFetchReturnTheExactBytesInOneRequestEach() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pushed = try await pushImage(registry, "team/app", tag: "v1")
        let client = try client()
        let byTag = try await client.fetchManifest(try ImageReference.parse("\(registry.host)/team/app:v1"))
        #expect(byTag.bytes == [UInt8](pushed.manifest))
        #expect(byTag.digest.description == pushed.digest)
        #expect(byTag.mediaType == ManifestMediaType.ociManifest)
        let byDigest = try await client.fetchManifest(
            try ImageReference.parse("\(registry.host)/team/app@\(pushed.digest)"))
        #expect(byDigest.bytes == byTag.bytes)
        #expect(client.counters.snapshot["manifest"] == 2)
    }

    @Test func dockerSchema2ManifestsAreAccepted() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pushed = try await pushImage(registry, "app", tag: "d", mediaType: ManifestMediaType.dockerManifest)
        let fetched = try await client().fetchManifest(try ImageReference.parse("\(registry.host)/app:d"))
        #expect(fetched.mediaType == ManifestMediaType.dockerManifest)
        #expect(fetched.digest.description == pushed.digest)
    }

    @Test func missingManifestIsNotFoundWithTheRegistrysCode() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        _ = try await pushImage(registry, "app", tag: "v1")
        let missingTag = await registryError {
            _ = try await client().fetchManifest(try ImageReference.parse("\(registry.host)/app:nope"))
        }
        #expect(missingTag?.kind == .notFound)
        #expect(missingTag?.reason == .manifestUnknown)
        #expect(missingTag?.httpStatus == 404)
        #expect(missingTag?.registryErrors.first?.code == "MANIFEST_UNKNOWN")
        let missingRepository = await registryError {
            _ = try await client().fetchManifest(try ImageReference.parse("\(registry.host)/never/pushed:v1"))
        }
        #expect(missingRepository?.kind == .notFound)
        #expect([.nameUnknown, .manifestUnknown].contains(missingRepository?.reason))
    }

    @Test func wrongDigestInTheReferenceIsAnIntegrityFailure() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pushed = try await pushImage(registry, "app", tag: "v1")
        // Same content asked for under another algorithm's digest cannot
        // match; ask by tag with a digest that is not the content's.
        let other = Digest.of(Array("something else".utf8)).description
        let unknown = await registryError {
            _ = try await client().fetchManifest(try ImageReference.parse("\(registry.host)/app@\(other)"))
        }
        // The registry does not know that digest.
        #expect(unknown?.kind == .notFound)
        #expect(pushed.digest != other)
    }

    @Test func basicAuthUsesTheDockerConfigCredentials() async throws {
        let registry = try await TestRegistry(auth: .basic(user: "alice", password: "s3cret-pass"))
        defer { registry.stop() }
        let pushed = try await pushImage(registry, "private/app", tag: "v1")
        let authed = try client(credentialsFor: registry, user: "alice", password: "s3cret-pass")
        let ref = try ImageReference.parse("\(registry.host)/private/app:v1")
        let first = try await authed.fetchManifest(ref)
        #expect(first.digest.description == pushed.digest)
        // The challenge is learnt once; later requests authorize up front.
        _ = try await authed.fetchManifest(ref)
        _ = try await authed.fetchManifest(ref)
        #expect(authed.counters.snapshot["manifest"] == 4)
    }

    @Test func basicAuthThroughADockerCredentialHelper() async throws {
        let registry = try await TestRegistry(auth: .basic(user: "alice", password: "s3cret-pass"))
        defer { registry.stop() }
        let pushed = try await pushImage(registry, "private/app", tag: "v1")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-helper-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"credHelpers":{"\#(registry.host)":"ocirpc-test"}}"#.utf8).write(
            to: dir.appendingPathComponent("config.json"))
        let helper = dir.appendingPathComponent("docker-credential-ocirpc-test")
        try Executables.write(
            """
            #!/bin/sh
            read url
            echo "$url" >> "$(dirname "$0")/calls"
            echo '{"ServerURL":"'"$url"'","Username":"alice","Secret":"s3cret-pass"}'

            """, to: helper.path)
        var configuration = RegistryClient.Configuration()
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": dir.path, "PATH": dir.path])
        let authed = RegistryClient(configuration: configuration, logger: .disabled)
        let ref = try ImageReference.parse("\(registry.host)/private/app:v1")
        for _ in 0..<3 {
            #expect(try await authed.fetchManifest(ref).digest.description == pushed.digest)
        }
        let calls = try String(contentsOf: dir.appendingPathComponent("calls"), encoding: .utf8)
        #expect(calls == "\(registry.host)\n", "the helper is asked once, with the registry")
    }

    @Test func basicAuthWithoutCredentialsIsUnauthorized() async throws {
        let registry = try await TestRegistry(auth: .basic(user: "alice", password: "s3cret-pass"))
        defer { registry.stop() }
        _ = try await pushImage(registry, "private/app", tag: "v1")
        for candidate in [try client(), try client(credentialsFor: registry, user: "alice", password: "wrong")] {
            let error = await registryError {
                _ = try await candidate.fetchManifest(try ImageReference.parse("\(registry.host)/private/app:v1"))
            }
            #expect(error?.kind == .accessDenied)
            #expect(error?.reason == .unauthorized)
            #expect(error.map { !$0.message.contains("s3cret") && !$0.message.contains("wrong") } == true)
        }
    }

    @Test func unreachableRegistryIsConnectionFailed() async throws {
        let port = try TestRegistry.freePort()
        let error = await registryError {
            _ = try await client().fetchManifest(try ImageReference.parse("127.0.0.1:\(port)/app:v1"))
        }
        #expect(error?.kind == .unavailable)
        #expect(error?.reason == .connectionFailed)
    }
}
