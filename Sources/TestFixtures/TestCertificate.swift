import Foundation

/// A CA made for a test and a certificate for 127.0.0.1 signed by it
/// (openssl), written into a directory of the test's.
public struct TestCertificate: Sendable {
    /// The CA's certificate (PEM), for `--ca-file`.
    public let caFile: String
    public let certificateFile: String
    public let keyFile: String

    public init(in directory: URL) throws {
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        caFile = path("ca.pem")
        certificateFile = path("cert.pem")
        keyFile = path("key.pem")
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(
            ["req", "-x509"] + curve + [
                "-keyout", path("ca-key.pem"), "-out", caFile,
                "-days", "2", "-subj", "/CN=ocirpc test CA",
            ])
        try Self.openssl(
            ["req", "-new"] + curve + [
                "-keyout", keyFile, "-out", path("cert.csr"),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ])
        try Self.openssl([
            "x509", "-req", "-in", path("cert.csr"), "-CA", caFile, "-CAkey", path("ca-key.pem"),
            "-CAcreateserial", "-out", certificateFile, "-days", "2", "-copy_extensions", "copy",
        ])
    }

    private static func openssl(_ arguments: [String]) throws {
        let (status, output) = try ChildProcess.run("/usr/bin/openssl", arguments)
        guard status == 0 else {
            throw TestRegistryError(
                "openssl \(arguments.first ?? "") failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}

/// An HTTPS server on loopback (`openssl s_server -HTTP`) that answers
/// every path it is given with a fixed, raw HTTP response: for redirects
/// that a registry could send.
public final class TLSScriptedServer: @unchecked Sendable {
    public let port: Int
    public let certificate: TestCertificate
    private let pid: pid_t

    public var host: String { "127.0.0.1:\(port)" }

    /// `responses` maps a path (`v2/app/manifests/v1`) to the raw response.
    public init(responses: [String: String]) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tls-scripted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificate = try TestCertificate(in: directory)
        let root = directory.appendingPathComponent("root")
        for (path, response) in responses {
            let file = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(response.utf8).write(to: file)
        }
        port = try TestRegistry.freePort()
        // s_server -HTTP serves files relative to its working directory.
        let command =
            "cd '\(root.path)' && exec /usr/bin/openssl s_server -quiet -HTTP -accept 127.0.0.1:\(port)"
            + " -cert '\(certificate.certificateFile)' -key '\(certificate.keyFile)'"
        pid = try ChildProcess.start(
            "/bin/sh", ["-c", command], log: directory.appendingPathComponent("server.log").path)
        for _ in 0..<250 {
            if let fd = LoopbackSocket.connect(port: port) {
                close(fd)
                return
            }
            usleep(20_000)
        }
        throw TestRegistryError("openssl s_server did not start on \(host)")
    }

    deinit { stop() }

    /// s_server does not end on SIGTERM: it is killed.
    public func stop() {
        if ChildProcess.isRunning(pid) { ChildProcess.forceStop(pid) }
    }
}
