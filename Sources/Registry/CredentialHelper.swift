import FoundationEssentials
import Glibc
import JSON
import Locking

/// Runs `docker-credential-<name> get` the way docker does: the server URL on
/// stdin, `{"Username","Secret"}` on stdout. The helper runs (`Subprocess`)
/// on an OS thread of its own, never on the task pool, and is killed when it
/// outlives `timeout`.
struct CredentialHelper: Sendable {
    /// The helper's suffix: `docker-credential-<name>`.
    let name: String
    /// Where to look for the helper (a `PATH` value).
    let searchPath: String
    let timeout: Double

    /// Helper names are plain words; anything else is never run.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
    }

    /// The helper's answer for `serverURL`, or nil (missing helper, failure,
    /// timeout, no credentials).
    func get(_ serverURL: String) async -> Credentials? {
        guard Self.isValidName(name), let executable = locate() else { return nil }
        let handOff = SanitizerHandOff.Point()
        let output: Data? = await withCheckedContinuation { continuation in
            startThreadOrRunHere(stackSize: 256 << 10) { [self] in
                let output = run(executable, input: Data(serverURL.utf8))
                SanitizerHandOff.release(handOff)
                continuation.resume(returning: output)
            }
        }
        SanitizerHandOff.acquire(handOff)
        guard let output, let reply = try? JSONParser.parse([UInt8](output)),
            let secret = reply["Secret"]?.stringValue, !secret.isEmpty
        else { return nil }
        let username = reply["Username"]?.stringValue ?? ""
        // Helpers return "<token>" as the username for identity tokens.
        if username == "<token>" { return Credentials(username: "", secret: "", identityToken: secret) }
        return Credentials(username: username, secret: secret)
    }

    private func locate() -> String? {
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/docker-credential-\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs `executable get` to completion (or the timeout); its stdout when
    /// it exits 0.
    private func run(_ executable: String, input: Data) -> Data? {
        guard let outcome = Subprocess.run(executable, ["get"], input: input, timeout: timeout, outputLimit: 1 << 20),
            !outcome.timedOut, outcome.exitStatus == 0
        else { return nil }
        return outcome.output
    }
}
