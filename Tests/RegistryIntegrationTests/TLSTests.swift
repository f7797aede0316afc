import Reasons
import Foundation
import Testing
import Locking
import TestFixtures
@testable import Registry

/// A registry serving HTTPS with a certificate from a private CA.
@Suite(.serialized, .needsDockerRegistry) struct TLSAgainstARealRegistry {
    private func client(for twin: TLSRegistryTwin, caFile: String?) -> RegistryClient {
        var configuration = RegistryClient.Configuration()
        configuration.scheme = RegistryScheme(secureRegistries: [twin.host])
        configuration.transport.caFile = caFile
        configuration.transport.retries = 0
        return RegistryClient(configuration: configuration, logger: .disabled)
    }

    @Test func theCAFileMakesAPrivateCertificateTrusted() async throws {
        let (registry, twin, image) = try await TLSRegistryTwin.withMinimalImage()
        defer { registry.stop(); twin.stop() }
        let fetched = try await client(for: twin, caFile: twin.caFile).fetchManifest(
            ImageReference.parse("\(twin.host)/app:v1"))
        #expect(fetched.digest.description == image.digest)
        #expect(fetched.bytes == [UInt8](image.manifest))
    }

    @Test func anUntrustedCertificateIsATLSFailure() async throws {
        let (registry, twin, _) = try await TLSRegistryTwin.withMinimalImage()
        defer { registry.stop(); twin.stop() }
        var failure: RegistryError?
        do {
            _ = try await client(for: twin, caFile: nil).fetchManifest(ImageReference.parse("\(twin.host)/app:v1"))
        } catch {
            failure = error as? RegistryError
        }
        #expect(failure?.reason == .tls, "\(String(describing: failure))")
    }

    @Test func plainHTTPToATLSPortIsAConnectionFailureNotAHang() async throws {
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let twin = try TLSRegistryTwin(of: registry)
        defer { twin.stop() }
        var configuration = RegistryClient.Configuration()
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        var failure: RegistryError?
        do {
            _ = try await client.fetchManifest(ImageReference.parse("\(twin.host)/app:v1"))
        } catch {
            failure = error as? RegistryError
        }
        // distribution answers plain HTTP on a TLS port with a 400.
        #expect(failure != nil)
        #expect(failure?.reason != .timeout)
    }
}

/// A registry on HTTPS may not send a client down to plain HTTP: the
/// redirect is refused and the plain-HTTP host is never asked.
@Suite(.needsDockerRegistry) struct NoDowngradeRedirects {
    @Test func anHTTPSRegistrysRedirectToHTTPIsRefused() async throws {
        let plainRequests = Locked<Int>(0)
        let plain = try TestHTTPServer { _ in
            plainRequests.withLock { $0 += 1 }
            return .response(
                status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                body: Array("{}".utf8))
        }
        defer { plain.stop() }
        let redirect =
            "HTTP/1.0 302 Found\r\nLocation: \(plain.baseURL)/v2/app/manifests/v1\r\nContent-Length: 0\r\n\r\n"
        let server = try TLSScriptedServer(responses: ["v2/app/manifests/v1": redirect])
        defer { server.stop() }
        var configuration = RegistryClient.Configuration()
        configuration.scheme = RegistryScheme(secureRegistries: [server.host])
        configuration.transport.caFile = server.certificate.caFile
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        await #expect(throws: RegistryError.self) {
            _ = try await client.fetchManifest(ImageReference.parse("\(server.host)/app:v1"))
        }
        #expect(plainRequests.withLock { $0 } == 0)
    }
}
