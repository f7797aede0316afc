import Dispatch
import FoundationEssentials
import CSystem
import Glibc

/// Runs a program to completion on the calling thread: posix_spawn, its
/// stdin fed from memory, its stdout collected, waitpid. No Foundation
/// `Process` (whose exit is noticed by another thread), so callers on OS
/// threads of their own never depend on the task pool.
package enum Subprocess {
    /// How a run ended.
    package struct Outcome: Sendable {
        /// The exit status, nil when a signal ended the program.
        package let exitStatus: Int32?
        package let output: Data
        /// Killed because it ran past the timeout.
        package let timedOut: Bool
    }

    /// Runs `executable` with `arguments`; stderr goes to /dev/null. Past
    /// `timeout` seconds the program is killed; past `outputLimit` bytes its
    /// output is cut. Nil when it could not be started.
    package static func run(
        _ executable: String, _ arguments: [String], input: Data? = nil,
        timeout: Double? = nil, outputLimit: Int = 64 << 20
    ) -> Outcome? {
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        // Close-on-exec from the start (a concurrent spawn must not inherit
        // them); the dup2s below survive exec.
        guard ocirpc_pipe_cloexec(&toChild) == 0 else { return nil }
        guard ocirpc_pipe_cloexec(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            return nil
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // Nothing else open here (registry connections, cache files) reaches the helper.
        _ = ocirpc_spawn_close_from(&actions, 3)
        // The program starts with the signals a fresh process has: none
        // blocked, each at its default. The server ignores SIGPIPE, and the
        // spawning thread may block every signal (libdispatch's threads
        // do), and both would pass through exec to the helper.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), everySignal = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var spawned = posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
        // A program just written (a helper installed a moment ago) cannot be
        // run while any process forked meanwhile still holds it open for
        // writing; that lasts until the fork execs, so wait a little.
        for _ in 0..<100 where spawned == ETXTBSY {
            usleep(10_000)
            spawned = posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
        }
        close(toChild[0])
        close(fromChild[1])
        defer { close(fromChild[0]) }
        guard spawned == 0 else {
            close(toChild[1])
            return nil
        }
        // A program that exits without reading its input must not kill us.
        signal(SIGPIPE, SIG_IGN)
        input?.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(toChild[1], raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        close(toChild[1])
        var output = Data()
        let deadline = timeout.map { DispatchTime.now().uptimeNanoseconds + UInt64($0 * 1e9) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var timedOut = false
        while output.count < outputLimit {
            var wait: Int32 = -1
            if let deadline {
                let now = DispatchTime.now().uptimeNanoseconds
                guard now < deadline else { timedOut = true; break }
                wait = Int32(min(1000, (deadline - now) / 1_000_000 + 1))
            }
            var descriptor = pollfd(fd: fromChild[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, wait)
            if ready < 0 && errno != EINTR { break }
            guard ready > 0 else { continue }
            let count = read(fromChild[0], &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            output.append(contentsOf: buffer[0..<min(count, outputLimit - output.count)])
        }
        if timedOut || output.count >= outputLimit { kill(pid, SIGKILL) }
        // A program may close its output and go on running: the deadline
        // holds for its exit too.
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { break }
            if reaped == 0, let deadline, DispatchTime.now().uptimeNanoseconds >= deadline {
                timedOut = true
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            if reaped == 0 { usleep(2_000) }
        }
        let exited = (status & 0x7f) == 0
        return Outcome(exitStatus: exited ? (status >> 8) & 0xff : nil, output: output, timedOut: timedOut)
    }
}
