import JSON
import Registry
import TestFixtures

/// Expected values written from the contract (the result schemas of `protocol/openrpc.json`), not captured
/// from the server.
enum Expected {
    static let oci = ManifestMediaType.ociManifest
    static let ociConfig = "application/vnd.oci.image.config.v1+json"
    static let gzipLayer = "application/vnd.oci.image.layer.v1.tar+gzip"

    /// A descriptor object with every key present.
    static func descriptor(
        _ mediaType: String, _ size: Int, _ digest: String, annotations: JSONValue = [:], platform: JSONValue? = nil
    ) -> JSONValue {
        var object: JSONObject = [
            "mediaType": .string(mediaType), "size": .integer(size), "digest": .string(digest), "data": "",
            "urls": [], "annotations": annotations, "artifactType": "",
        ]
        if let platform { object["platform"] = platform }
        return .object(object)
    }

    static func platform(_ os: String, _ architecture: String, variant: String = "") -> JSONValue {
        [
            "architecture": .string(architecture), "os": .string(os), "os.version": "", "os.features": [],
            "variant": .string(variant), "features": [],
        ]
    }
}

/// A registry and a server talking to it.
struct Rig {
    let registry: TestRegistry
    let session: RPCSession

    static func start(
        auth: TestRegistry.Auth = .anonymous, arguments: [String] = [], environment: [String: String] = [:]
    ) async throws -> Rig {
        let registry = try await TestRegistry(auth: auth)
        let session = try RPCSession(arguments + ["--log-level", "warn"], environment: environment)
        return Rig(registry: registry, session: session)
    }

    func ref(_ repository: String, _ identifier: String) -> String {
        identifier.hasPrefix("sha")
            ? "\(registry.host)/\(repository)@\(identifier)" : "\(registry.host)/\(repository):\(identifier)"
    }

    func stop() async {
        await session.close()
        registry.stop()
    }

    /// `server.stats`'s `memoryHeld` once what the calls took is given
    /// back (just after each answer is written: asked until then, or 5 s).
    func memoryHeldOnceSettled() async throws -> JSONValue? {
        var held = try await session.result("server.stats", [])["memoryHeld"]
        for _ in 0..<100 where held?["used"] != 0 {
            try await Task.sleep(for: .milliseconds(50))
            held = try await session.result("server.stats", [])["memoryHeld"]
        }
        return held
    }
}

extension JSONValue {
    /// `error.data.reason` of a response message.
    var errorReason: String? { self["error"]?["data"]?["reason"]?.stringValue }
    var errorCode: Int? { self["error"]?["code"]?.intValue }
}
