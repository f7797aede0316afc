import Foundation
import Glibc

/// A second `docker-registry` serving a `TestRegistry`'s storage over TLS on
/// its own loopback port, with a certificate (IP 127.0.0.1) signed by a CA
/// made for it. Fixtures are pushed to the plain registry; the twin serves
/// the same content over HTTPS.
public final class TLSRegistryTwin: @unchecked Sendable {
    public let port: Int
    /// The PEM file of the CA that signed the twin's certificate.
    public let caFile: String
    private let pid: pid_t

    /// `host:port`, as it appears in references.
    public var host: String { "127.0.0.1:\(port)" }

    public init(of registry: TestRegistry) throws {
        let directory = registry.directory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let certificate = try TestCertificate(in: directory)
        caFile = certificate.caFile
        port = try TestRegistry.freePort()
        let config = TestRegistry.configuration(
            storage: registry.directory.appendingPathComponent("storage"), port: port,
            http: "  tls:\n    certificate: \(certificate.certificateFile)\n    key: \(certificate.keyFile)")
        try config.write(toFile: path("config.yml"), atomically: true, encoding: .utf8)
        pid = try ChildProcess.start(
            TestRegistry.binary, ["serve", path("config.yml")], log: path("registry.log"))
        try waitUntilListening()
    }

    deinit { stop() }

    public func stop() {
        if ChildProcess.isRunning(pid) { ChildProcess.stop(pid) }
    }

    /// Polls until the port accepts a TCP connection.
    private func waitUntilListening() throws {
        for _ in 0..<500 {
            if let fd = LoopbackSocket.connect(port: port) {
                close(fd)
                return
            }
            guard ChildProcess.isRunning(pid) else { break }
            usleep(20_000)
        }
        throw TestRegistryError("the TLS registry did not start on \(host)")
    }
}

extension TLSRegistryTwin {
    /// A plain registry holding the minimal image `app:v1` (returned) and
    /// its TLS twin; the caller stops both.
    public static func withMinimalImage() async throws
        -> (registry: TestRegistry, twin: TLSRegistryTwin, image: (manifest: Data, digest: String))
    {
        let registry = try await TestRegistry()
        let image = try await registry.pushMinimalImage("app", "v1")
        return (registry, try TLSRegistryTwin(of: registry), image)
    }
}
