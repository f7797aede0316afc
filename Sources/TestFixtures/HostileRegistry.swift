import Foundation
import Registry

/// A registry written by an attacker, for tests: it serves the manifests
/// and blobs it is given the way a registry does (by tag or digest, HEAD
/// and GET), and `script` may answer any request its own way first
/// (lying sizes, drips, endless bodies, 5xx on one endpoint, redirects,
/// foreign challenges). Everything else is a registry-style 404.
public final class HostileRegistry: @unchecked Sendable {
    public let server: TestHTTPServer
    /// `127.0.0.1:<port>`, a registry name the server speaks plain HTTP to.
    public var host: String { "127.0.0.1:\(server.port)" }
    private let lock = NSLock()
    private var manifests: [String: (mediaType: String, bytes: [UInt8])] = [:]
    private var blobs: [String: [UInt8]] = [:]
    private var script: @Sendable (TestHTTPRequest) -> TestHTTPReply? = { _ in nil }
    private var seen: [TestHTTPRequest] = []

    public init() throws {
        let box = WeakBox()
        server = try TestHTTPServer { request in box.registry?.answer(request) ?? .reset }
        box.registry = self
    }

    deinit { server.stop() }

    /// Serves `bytes` as `repository`'s manifest under `tag` and its digest.
    @discardableResult
    public func manifest(
        _ repository: String, tag: String? = nil, mediaType: String = "application/vnd.oci.image.manifest.v1+json",
        _ bytes: [UInt8]
    ) -> Digest {
        let digest = Digest.of(bytes, algorithm: .sha256)
        lock.withLock {
            manifests["\(repository)@\(digest)"] = (mediaType, bytes)
            if let tag { manifests["\(repository):\(tag)"] = (mediaType, bytes) }
        }
        return digest
    }

    /// Serves `bytes` as a blob of `repository`.
    @discardableResult
    public func blob(_ repository: String, _ bytes: [UInt8]) -> Digest {
        let digest = Digest.of(bytes, algorithm: .sha256)
        lock.withLock { blobs["\(repository)@\(digest)"] = bytes }
        return digest
    }

    /// An image manifest over `layers` (already served as blobs), served
    /// under `tag`; returns its digest.
    @discardableResult
    public func image(_ repository: String, tag: String? = nil, layers: [[UInt8]]) -> Digest {
        let config = Array("{}".utf8)
        let configDigest = blob(repository, config)
        let layerJSON = layers.map { layer in
            let digest = blob(repository, layer)
            return
                #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":\#(layer.count),"digest":"\#(digest)"}"#
        }
        let text =
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"\#(configDigest)"},"layers":[\#(layerJSON.joined(separator: ","))]}"#
        return manifest(repository, tag: tag, Array(text.utf8))
    }

    /// Answers matching requests its own way (nil: as a registry would).
    public func script(_ answer: @escaping @Sendable (TestHTTPRequest) -> TestHTTPReply?) {
        lock.withLock { script = answer }
    }

    /// Answers requests for blobs its own way (nil: as a registry would).
    public func scriptBlobs(_ answer: @escaping @Sendable (TestHTTPRequest) -> TestHTTPReply?) {
        script { request in request.path.contains("/blobs/") ? answer(request) : nil }
    }

    /// Every request received so far.
    public var requests: [TestHTTPRequest] { lock.withLock { seen } }

    public func stop() { server.stop() }

    private func answer(_ request: TestHTTPRequest) -> TestHTTPReply {
        let scripted = lock.withLock { () -> (@Sendable (TestHTTPRequest) -> TestHTTPReply?) in
            seen.append(request)
            return script
        }
        if let reply = scripted(request) { return reply }
        let path = request.path
        if path == "/v2/" { return .response(status: 200, headers: [], body: Array("{}".utf8)) }
        for (marker, separator) in [("/manifests/", ":"), ("/blobs/", "@")] {
            guard path.hasPrefix("/v2/"), let range = path.range(of: marker) else { continue }
            let repository = String(path[path.index(path.startIndex, offsetBy: 4)..<range.lowerBound])
            let reference = String(path[range.upperBound...])
            let key =
                reference.hasPrefix("sha256:") ? "\(repository)@\(reference)" : "\(repository)\(separator)\(reference)"
            if marker == "/manifests/", let found = lock.withLock({ manifests[key] }) {
                let digest = Digest.of(found.bytes, algorithm: .sha256)
                return .response(
                    status: 200,
                    headers: [
                        ("Content-Type", found.mediaType),
                        ("Docker-Content-Digest", digest.description),
                    ], body: found.bytes)
            }
            if marker == "/blobs/", let found = lock.withLock({ blobs[key] }) {
                return .response(status: 200, headers: [("Content-Type", "application/octet-stream")], body: found)
            }
            let code = marker == "/blobs/" ? "BLOB_UNKNOWN" : "MANIFEST_UNKNOWN"
            return Self.registryError(404, code)
        }
        return Self.registryError(404, "NAME_UNKNOWN")
    }

    /// A registry's `{"errors":[...]}` answer.
    public static func registryError(_ status: Int, _ code: String) -> TestHTTPReply {
        .response(
            status: status, headers: [("Content-Type", "application/json")],
            body: Array(#"{"errors":[{"code":"\#(code)","message":"\#(code.lowercased())"}]}"#.utf8))
    }
}

private final class WeakBox: @unchecked Sendable {
    weak var registry: HostileRegistry?
}
