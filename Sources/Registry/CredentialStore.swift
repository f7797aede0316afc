import Foundation
import JSON

/// A username and secret for one registry. Never logged or echoed.
public struct Credentials: Sendable, Equatable {
    public let username: String
    public let secret: String
    /// An identity (refresh) token from `docker login`, used with the token
    /// server's OAuth2 flow instead of the password.
    public let identityToken: String?

    public init(username: String, secret: String, identityToken: String? = nil) {
        self.username = username
        self.secret = secret
        self.identityToken = identityToken
    }
}

/// Registry credentials from the files docker and podman write:
/// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` — `auths`
/// (`auth`, `identitytoken`), `credHelpers` and `credsStore` (through
/// `docker-credential-<name> get`). The first file that knows a registry wins.
public final class CredentialStore: Sendable {
    private struct AuthFile: Sendable {
        var auths: [String: Credentials] = [:]
        var helpers: [String: String] = [:]
        var store: String?
    }

    private let files: [AuthFile]

    /// Reads the files named by `environment` (defaults to the process's).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var paths: [String] = []
        if let file = environment["REGISTRY_AUTH_FILE"], !file.isEmpty { paths.append(file) }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            paths.append(runtime + "/containers/auth.json")
        }
        if let docker = environment["DOCKER_CONFIG"], !docker.isEmpty {
            paths.append(docker + "/config.json")
        } else if let home = environment["HOME"], !home.isEmpty {
            paths.append(home + "/.docker/config.json")
        }
        files = paths.compactMap(Self.load)
    }

    /// Credentials for `registry` (`host[:port]`), or nil for anonymous.
    public func credentials(for registry: String) -> Credentials? {
        let keys = Self.lookupKeys(registry)
        for file in files {
            for key in keys {
                if let helper = file.helpers[key] { return Self.runHelper(helper, serverURL: key) }
                if let found = file.auths[key] { return found }
            }
            if let store = file.store, let found = Self.runHelper(store, serverURL: registry) { return found }
        }
        return nil
    }

    /// The spellings a config may use for a registry.
    static func lookupKeys(_ registry: String) -> [String] {
        var keys = [registry, "https://\(registry)", "http://\(registry)", "https://\(registry)/v1/", "https://\(registry)/v2/"]
        if registry == ImageReference.dockerHub {
            keys += ["docker.io", "https://index.docker.io/v1/", "registry-1.docker.io"]
        }
        return keys
    }

    private static func load(_ path: String) -> AuthFile? {
        guard let data = FileManager.default.contents(atPath: path),
            let document = try? JSONParser.parse([UInt8](data))
        else { return nil }
        var file = AuthFile()
        for member in document["auths"]?.objectValue?.members ?? [] {
            let entry = member.value
            var username = entry["username"]?.stringValue ?? ""
            var secret = entry["password"]?.stringValue ?? ""
            if let auth = entry["auth"]?.stringValue, let decoded = Data(base64Encoded: auth),
               let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") {
                username = String(text[..<colon])
                secret = String(text[text.index(after: colon)...])
            }
            let identityToken = entry["identitytoken"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            guard !username.isEmpty || identityToken != nil else { continue }
            file.auths[member.key] = Credentials(username: username, secret: secret, identityToken: identityToken)
        }
        for member in document["credHelpers"]?.objectValue?.members ?? [] {
            if let helper = member.value.stringValue { file.helpers[member.key] = helper }
        }
        file.store = document["credsStore"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        return file
    }

    /// Runs `docker-credential-<helper> get` with the server URL on stdin.
    private static func runHelper(_ helper: String, serverURL: String) -> Credentials? {
        guard helper.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["docker-credential-\(helper)", "get"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        try? input.fileHandleForWriting.write(contentsOf: Data(serverURL.utf8))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let reply = try? JSONParser.parse([UInt8](data)),
            let secret = reply["Secret"]?.stringValue
        else { return nil }
        let username = reply["Username"]?.stringValue ?? ""
        // Helpers return "<token>" as the username for identity tokens.
        if username == "<token>" { return Credentials(username: "", secret: "", identityToken: secret) }
        return Credentials(username: username, secret: secret)
    }
}
