import CSystem
import Foundation
import Registry
#if canImport(Glibc)
    import Glibc
#endif

/// Child processes for fixtures (registry, htpasswd, openssl) started with
/// posix_spawn and reaped with waitpid. Foundation's `waitUntilExit` needs a
/// thread to notice the exit, and with every task-pool thread blocked in it
/// at once the test run hung: these waits depend on nothing else.
public enum ChildProcess {
    /// Runs `tool` to completion, `input` on its stdin; its stdout and status.
    public static func run(_ tool: String, _ arguments: [String], input: Data? = nil) throws -> (
        status: Int32, output: Data
    ) {
        guard let outcome = Subprocess.run(tool, arguments, input: input) else {
            throw TestRegistryError("could not start \(tool)")
        }
        return (outcome.exitStatus ?? -1, outcome.output)
    }

    /// Starts `tool` in the background, stdout to /dev/null and stderr to `log`.
    public static func start(_ tool: String, _ arguments: [String], log: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // Tests run side by side: a registry started now must not hold the
        // pipe of another test's server open (its reader would wait for an
        // end that never comes) nor any listener of the test process.
        _ = ocirpc_spawn_close_from(&actions, 3)
        return try spawn(tool, arguments, &actions)
    }

    /// Whether `pid` is still running (reaps it when it has exited).
    public static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// Whether `pid` holds the socket listening on TCP `port` (IPv4): its
    /// inode, found in `/proc/<pid>/net/tcp`, is one of `pid`'s open files.
    /// Looked for three times before saying no: the kernel makes that table
    /// as it is read, and sockets other tests open and close meanwhile can
    /// make a read skip a line.
    public static func isListening(_ pid: pid_t, port: Int) -> Bool {
        for attempt in 0..<3 {
            if attempt > 0 { usleep(20_000) }
            if holdsListeningSocket(pid, port: port) { return true }
        }
        return false
    }

    private static func holdsListeningSocket(_ pid: pid_t, port: Int) -> Bool {
        guard let table = readWhole("/proc/\(pid)/net/tcp") else { return false }
        let portHex = String(format: "%04X", port)
        let inodes = table.split(separator: "\n").dropFirst().compactMap { line -> Substring? in
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[3] == "0A", fields[1].hasSuffix(":" + portHex) else { return nil }
            return fields[9]
        }
        guard !inodes.isEmpty else { return false }
        let descriptors = "/proc/\(pid)/fd"
        let open = (try? FileManager.default.contentsOfDirectory(atPath: descriptors)) ?? []
        return open.contains { name in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: descriptors + "/" + name)
            else { return false }
            return inodes.contains { target == "socket:[\($0)]" }
        }
    }

    /// A file under `/proc`, read in reads of 1 MiB: the kernel makes the
    /// table in one pass for each read, and resumes it by line number on
    /// the next, which small reads (a size-less file's default) make often.
    private static func readWhole(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// SIGTERM, then waits for the exit.
    public static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        _ = wait(for: pid)
    }

    /// SIGKILL, then waits: for programs that do not end on SIGTERM
    /// (`openssl s_server`).
    public static func forceStop(_ pid: pid_t) {
        kill(pid, SIGKILL)
        _ = wait(for: pid)
    }

    @discardableResult
    static func wait(for pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status >> 8) & 0xFF
    }

    private static func spawn(_ tool: String, _ arguments: [String], _ actions: inout posix_spawn_file_actions_t) throws
        -> pid_t
    {
        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard result == 0 else { throw TestRegistryError("cannot start \(tool) (error \(result))") }
        return pid
    }
}
