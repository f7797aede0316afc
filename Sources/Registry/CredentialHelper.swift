import Foundation
import Glibc
import JSON
import Locking

/// Runs `docker-credential-<name> get` the way docker does: the server URL on
/// stdin, `{"Username","Secret"}` on stdout. The helper runs on an OS thread
/// of its own (spawned with posix_spawn, reaped with waitpid), never on the
/// task pool, and is killed when it outlives `timeout`.
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
        let output: Data? = await withCheckedContinuation { continuation in
            startThread(stackSize: 256 << 10) { [self] in
                continuation.resume(returning: run(executable, input: Data(serverURL.utf8)))
            }
        }
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
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0 else { return nil }
        guard pipe(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            return nil
        }
        // Not inherited by other children; the dup2s below survive exec.
        for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let arguments = [executable, "get"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
        close(toChild[0])
        close(fromChild[1])
        defer { close(fromChild[0]) }
        guard spawned == 0 else {
            close(toChild[1])
            return nil
        }
        input.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(toChild[1], raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        close(toChild[1])
        var output = Data()
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        var buffer = [UInt8](repeating: 0, count: 4096)
        var timedOut = false
        while output.count < 1 << 20 {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { timedOut = true; break }
            var descriptor = pollfd(fd: fromChild[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(1000, (deadline - now) / 1_000_000 + 1)))
            if ready < 0 && errno != EINTR { break }
            guard ready > 0 else { continue }
            let count = read(fromChild[0], &buffer, buffer.count)
            if count <= 0 { break }
            output.append(contentsOf: buffer[0..<count])
        }
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitedCleanly = (status & 0x7f) == 0 && ((status >> 8) & 0xff) == 0
        return !timedOut && exitedCleanly ? output : nil
    }
}
