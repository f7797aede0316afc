import Foundation
import Logging
import Registry

/// A real registry (Debian's `docker-registry`, CNCF distribution) started
/// on loopback for one test, with its own storage in a temporary folder.
public final class TestRegistry: @unchecked Sendable {
    public enum Auth: Sendable {
        case anonymous
        /// htpasswd basic auth with one user.
        case basic(user: String, password: String)
        /// Bearer tokens from a `TokenIssuer` that wants these credentials.
        case token(user: String, password: String)
    }

    /// The token server, in `.token` mode.
    public private(set) var tokenIssuer: TokenIssuer?

    public private(set) var port: Int
    public let directory: URL
    private var pid: pid_t = 0
    public let auth: Auth

    /// `host:port`, as it appears in references.
    public var host: String { "127.0.0.1:\(port)" }

    /// - Parameter upstream: when given (`host:port`), the registry is a
    ///   pull-through cache of that one (distribution's proxy mode): read
    ///   only, fetching what it lacks from the upstream and keeping it.
    /// - Parameter firstPort: the port tried first (the fixture's own tests
    ///   give one that is taken); a free one by default.
    /// - Parameter allowingForeignLayers: the registry takes manifests whose
    ///   layers name http(s) URLs (foreign layers, which it need not hold),
    ///   as Docker Hub did for Windows base layers; by default it refuses them.
    public init(
        auth: Auth = .anonymous, pullThroughOf upstream: String? = nil, firstPort: Int? = nil,
        allowingForeignLayers: Bool = false
    ) async throws {
        ignoreBrokenPipes()
        self.auth = auth
        port = try firstPort ?? Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var authSection = ""
        if case .basic(let user, let password) = auth {
            let htpasswd = directory.appendingPathComponent("htpasswd")
            _ = try ChildProcess.run("/usr/bin/htpasswd", ["-Bbc", htpasswd.path, user, password])
            authSection = """
                auth:
                  htpasswd:
                    realm: ocirpc-test
                    path: \(htpasswd.path)
                """
        }
        if case .token(let user, let password) = auth {
            let issuer = try TokenIssuer(users: [user: password], directory: directory.appendingPathComponent("issuer"))
            tokenIssuer = issuer
            authSection = """
                auth:
                  token:
                    realm: \(issuer.realm)
                    service: \(issuer.service)
                    issuer: \(issuer.issuer)
                    rootcertbundle: \(issuer.certificatePath)
                """
        }
        if let upstream {
            authSection += """

                proxy:
                  remoteurl: http://\(upstream)
                """
        }
        if allowingForeignLayers {
            authSection += """

                validation:
                  manifests:
                    urls:
                      allow:
                        - ^https?://
                """
        }
        let configFile = directory.appendingPathComponent("config.yml")
        // The port is free when picked but not held until the registry
        // binds it: a test running alongside may take it first, and then
        // what answers there is not this registry. It starts on another.
        for attempt in 1...5 {
            let config = Self.configuration(
                storage: directory.appendingPathComponent("storage"), port: port,
                topLevel: authSection)
            try config.write(to: configFile, atomically: true, encoding: .utf8)
            try launch(configFile)
            do {
                try await waitUntilServing()
                return
            } catch let error as TestRegistryError where error.portTaken && attempt < 5 {
                port = try Self.freePort()
            }
        }
    }

    deinit {
        stop()
    }

    /// A `docker-registry` configuration: filesystem storage (deletes
    /// allowed), quiet logs, listening on 127.0.0.1:`port`. `http` lines go
    /// under `http:` (indented by two spaces already), `topLevel` at the top.
    static func configuration(storage: URL, port: Int, http: String = "", topLevel: String = "") -> String {
        """
        version: 0.1
        log:
          level: error
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(storage.path)
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:\(port)
        \(http)
        \(topLevel)
        """
    }

    /// Debian's `docker-registry` (`OCIRPC_DOCKER_REGISTRY` names another).
    public static let binary =
        ProcessInfo.processInfo.environment["OCIRPC_DOCKER_REGISTRY"] ?? "/usr/bin/docker-registry"

    /// Whether the registry the integration tests start is installed.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    private func launch(_ configFile: URL) throws {
        let log = directory.appendingPathComponent("registry.log").path
        pid = try ChildProcess.start(Self.binary, ["serve", configFile.path], log: log)
    }

    /// Stops the registry process and starts it again on the same port
    /// with the same storage (what is pushed stays).
    public func restart(downFor seconds: Double = 0) async throws {
        ChildProcess.stop(pid)
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int(seconds * 1000))) }
        try launch(directory.appendingPathComponent("config.yml"))
        try await waitUntilServing()
    }

    /// Whether the registry's storage holds the blob (or manifest) `digest`
    /// (`sha256:...`): a pull-through cache stores what it fetched only
    /// after it has sent it on.
    public func stores(_ digest: String) -> Bool {
        let hex = String(digest.dropFirst("sha256:".count))
        let path = directory.appendingPathComponent(
            "storage/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data")
        return FileManager.default.fileExists(atPath: path.path)
    }

    /// Waits up to `seconds` until the storage holds every one of `digests`.
    public func waitUntilStored(_ digests: [String], seconds: Double = 120) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !digests.allSatisfy(stores) {
            guard Date() < deadline else {
                throw TestRegistryError("the registry did not store \(digests.filter { !stores($0) }) in \(seconds) s")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    public func stop() {
        tokenIssuer?.stop()
        if pid > 0 && ChildProcess.isRunning(pid) { ChildProcess.stop(pid) }
        try? FileManager.default.removeItem(at: directory)
    }

    private func waitUntilServing() async throws {
        let url = URL(string: "http://\(host)/v2/")!
        var answeredByAnother = false
        for _ in 0..<500 {
            if let response = try? await request("GET", url), response.status == 200 {
                // Only an answer from this registry's own socket counts.
                if ChildProcess.isListening(pid, port: port) { return }
                answeredByAnother = true
            }
            guard ChildProcess.isRunning(pid) else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("registry.log"), encoding: .utf8)) ?? ""
        var error = TestRegistryError("registry did not start on \(host): \(log.suffix(500))")
        error.portTaken = answeredByAnother || log.contains("address already in use")
        throw error
    }

    /// A free TCP port on loopback (bound, read, released).
    public static func freePort() throws -> Int {
        let (fd, port) = try LoopbackSocket.bind(listening: false)
        close(fd)
        return port
    }

    // MARK: - Pushing fixtures through the registry API

    /// What the fixture pushes send: basic credentials, or a push token
    /// for the repository the URL names.
    private func authorization(for url: URL) -> String? {
        switch auth {
        case .anonymous:
            return nil
        case .basic(let user, let password):
            return "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        case .token(let user, _):
            let path = url.path
            var repository: String?
            if path.hasPrefix("/v2/"),
                let marker = ["/blobs/", "/manifests/", "/tags/"].compactMap({ path.range(of: $0) }).first
            {
                repository = String(path[path.index(path.startIndex, offsetBy: 4)..<marker.lowerBound])
            }
            return (try? tokenIssuer?.mint(subject: user, repository: repository, actions: ["pull", "push"])).flatMap {
                $0
            }
            .map { "Bearer " + $0 }
        }
    }

    /// The fixtures' HTTP client: the server's own transport, no retries.
    private static let transport: HTTPTransport = {
        var settings = HTTPTransport.Settings()
        settings.retries = 0
        return HTTPTransport(settings: settings, logger: .disabled, counters: RegistryCounters())
    }()

    private func request(_ method: String, _ url: URL, body: Data? = nil, contentType: String? = nil) async throws
        -> HTTPResponse
    {
        var request = HTTPRequest(method, url: url)
        request.body = body
        if let contentType { request.setHeader("Content-Type", contentType) }
        if let authorization = authorization(for: url) { request.setHeader("Authorization", authorization) }
        return try await Self.transport.send(request, kind: .blob)
    }

    /// Uploads `bytes` as a blob of `repository`; returns its digest.
    @discardableResult
    public func pushBlob(_ repository: String, _ bytes: Data) async throws -> String {
        let digest = Digest.of([UInt8](bytes)).description
        let start = try await request("POST", URL(string: "http://\(host)/v2/\(repository)/blobs/uploads/")!)
        guard start.status == 202, let location = start.header("Location") else {
            throw TestRegistryError("upload start: \(start.status)")
        }
        var components = URLComponents(
            url: URL(string: location, relativeTo: URL(string: "http://\(host)")!)!,
            resolvingAgainstBaseURL: true)!
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "digest", value: digest)]
        let done = try await request("PUT", components.url!, body: bytes, contentType: "application/octet-stream")
        guard done.status == 201 else { throw TestRegistryError("upload finish: \(done.status)") }
        return digest
    }

    /// Deletes the blob `digest` of `repository` (a registry whose blobs
    /// were deleted or collected: manifests may still name it).
    public func deleteBlob(_ repository: String, _ digest: String) async throws {
        let response = try await request("DELETE", URL(string: "http://\(host)/v2/\(repository)/blobs/\(digest)")!)
        guard response.status == 202 else { throw TestRegistryError("blob delete: \(response.status)") }
    }

    /// Deletes the manifest `digest` of `repository` (one an index still
    /// names, say: the registry does not keep it for the index).
    public func deleteManifest(_ repository: String, _ digest: String) async throws {
        let response = try await request("DELETE", URL(string: "http://\(host)/v2/\(repository)/manifests/\(digest)")!)
        guard response.status == 202 else { throw TestRegistryError("manifest delete: \(response.status)") }
    }

    /// Puts a manifest under `reference` (a tag or a digest); returns its digest.
    @discardableResult
    public func pushManifest(_ repository: String, _ reference: String, _ bytes: Data, mediaType: String) async throws
        -> String
    {
        let response = try await request(
            "PUT", URL(string: "http://\(host)/v2/\(repository)/manifests/\(reference)")!, body: bytes,
            contentType: mediaType)
        guard response.status == 201 else { throw TestRegistryError("manifest put: \(response.status)") }
        return Digest.of([UInt8](bytes)).description
    }
}

extension TestRegistry {
    /// Pushes a minimal OCI image (an empty `{}` config, no layers) under
    /// `reference` (a tag or a digest); returns the manifest and its digest.
    @discardableResult
    public func pushMinimalImage(_ repository: String, _ reference: String, annotations: String = "{}") async throws
        -> (manifest: Data, digest: String)
    {
        let config = try await pushBlob(repository, Data("{}".utf8))
        let manifest = Data(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"\#(config)"},"layers":[],"annotations":\#(annotations)}"#
                .utf8)
        let digest = try await pushManifest(repository, reference, manifest, mediaType: ManifestMediaType.ociManifest)
        return (manifest, digest)
    }
}

/// A test fixture could not be set up (registry, proxy, token issuer).
public struct TestRegistryError: Error, CustomStringConvertible {
    public let description: String
    /// A registry did not start because something else had its port.
    public var portTaken = false
    public init(_ description: String) { self.description = description }
}
