import Foundation

/// A Docker config directory (what `DOCKER_CONFIG` names) for tests.
public enum DockerConfigDirectory {
    /// A new directory whose `config.json` holds `user` and `password` for
    /// `host` (as `docker login` writes them). The caller removes it.
    public static func make(host: String, user: String, password: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-docker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let auth = Data("\(user):\(password)".utf8).base64EncodedString()
        try Data(#"{"auths":{"\#(host)":{"auth":"\#(auth)"}}}"#.utf8).write(
            to: directory.appendingPathComponent("config.json"))
        return directory
    }
}
