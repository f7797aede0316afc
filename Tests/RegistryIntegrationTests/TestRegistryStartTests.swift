import Foundation
import Glibc
import Registry
import Testing
import TestFixtures

/// The registry the tests start picks a free port and releases it before
/// `docker-registry` binds it; a test running alongside may take it first.
/// What then answers there must not pass for the registry.
@Suite(.needsDockerRegistry) struct TestRegistryStartTests {
    @Test func aRegistryWhosePortWasTakenStartsOnAnotherAndServesWhatWasPushedToIt() async throws {
        // Something else answers every request on this port with 200.
        let squatter = try TestHTTPServer { _ in .response(status: 200, headers: [], body: []) }
        defer { squatter.stop() }
        let registry = try await TestRegistry(firstPort: squatter.port)
        defer { registry.stop() }
        #expect(registry.port != squatter.port)
        let pushed = try await registry.pushMinimalImage("owned", "v1")
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        let fetched = try await client.fetchManifest(try ImageReference.parse("\(registry.host)/owned:v1"))
        #expect(fetched.digest.description == pushed.digest)
    }

    @Test func aListeningSocketIsFoundOnlyInTheProcessHoldingIt() async throws {
        let server = try TestHTTPServer { _ in .reset }
        defer { server.stop() }
        #expect(ChildProcess.isListening(getpid(), port: server.port))
        let registry = try await TestRegistry()
        defer { registry.stop() }
        #expect(!ChildProcess.isListening(getpid(), port: registry.port))
    }
}
