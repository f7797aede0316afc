import Foundation
import Glibc
import Testing
import TestFixtures
@testable import Registry

@Suite struct SubprocessRuns {
    @Test func inputGoesInAndOutputComesBack() throws {
        let outcome = try #require(Subprocess.run("/bin/cat", [], input: Data("hello\nworld".utf8)))
        #expect(outcome.output == Data("hello\nworld".utf8))
        #expect(outcome.exitStatus == 0)
        #expect(!outcome.timedOut)
    }

    @Test func aProgramInheritsNoFileButItsStandardStreams() throws {
        // An open file without close-on-exec, as a library may leave one.
        let file = open("/dev/null", O_RDONLY)
        try #require(file > 2)
        defer { close(file) }
        let outcome = try #require(
            Subprocess.run("/bin/sh", ["-c", "if [ -e /proc/self/fd/\(file) ]; then echo open; else echo closed; fi"]))
        #expect(String(decoding: outcome.output, as: UTF8.self) == "closed\n")
    }

    /// A helper starts as a fresh process does: no signal blocked and none
    /// ignored, whatever the spawning thread blocks (libdispatch's threads
    /// block every signal) and the server ignores (SIGPIPE). Before, a
    /// helper ignored SIGPIPE and could start with SIGTERM blocked.
    @Test func aProgramStartsWithNoSignalBlockedOrIgnored() throws {
        let ignoredBefore = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, ignoredBefore) }
        var blocked = sigset_t(), before = sigset_t()
        sigemptyset(&blocked)
        for number in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&blocked, number) }
        pthread_sigmask(SIG_BLOCK, &blocked, &before)
        defer { pthread_sigmask(SIG_SETMASK, &before, nil) }
        let outcome = try #require(Subprocess.run("/bin/grep", ["-E", "^Sig(Blk|Ign):", "/proc/self/status"]))
        let masks = String(decoding: outcome.output, as: UTF8.self).split(separator: "\n").map {
            UInt64($0.split(separator: "\t").last ?? "", radix: 16)
        }
        #expect(masks.count == 2, "\(outcome)")
        #expect(masks.first == 0, "blocked: \(masks)")
        // Of the ignored, the standard signals (1-31): glibc's spawn ignores
        // its own two (32, 33) in the child when the spawning thread blocks
        // them, and every program's glibc sets them up again.
        #expect(masks.last.map { $0.map { $0 & 0x7fff_ffff } } == 0, "ignored: \(masks)")
    }

    @Test func theExitStatusIsReported() throws {
        #expect(Subprocess.run("/bin/sh", ["-c", "exit 3"])?.exitStatus == 3)
    }

    @Test func aProgramEndedByASignalHasNoExitStatus() throws {
        let outcome = try #require(Subprocess.run("/bin/sh", ["-c", "kill -9 $$"]))
        #expect(outcome.exitStatus == nil)
    }

    @Test func aProgramPastItsTimeoutIsKilled() throws {
        let outcome = try #require(Subprocess.run("/bin/sleep", ["600"], timeout: 0.2))
        #expect(outcome.timedOut)
        #expect(outcome.exitStatus == nil)
    }

    @Test func aProgramThatClosesItsOutputAndLingersIsKilledAtTheTimeout() throws {
        let started = ContinuousClock.now
        let outcome = try #require(Subprocess.run("/bin/sh", ["-c", "exec >&-; exec sleep 600"], timeout: 0.3))
        #expect(outcome.timedOut)
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func outputPastTheLimitIsCut() throws {
        let outcome = try #require(Subprocess.run("/bin/sh", ["-c", "yes"], outputLimit: 100_000))
        #expect(outcome.output.count == 100_000)
    }

    @Test func aProgramStillOpenForWritingIsRunOnceItIsClosed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-script-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Executables.write("#!/bin/sh\necho ran\n", to: path)
        // Held open for writing (as a process forked while it was written
        // would hold it), close-on-exec so that no other test's child keeps it.
        let writer = open(path, O_WRONLY | O_CLOEXEC)
        #expect(writer >= 0)
        // Closed from a thread of its own: a dispatch queue can be held up
        // past the second Subprocess waits when the suites load both cores.
        Thread.detachNewThread {
            usleep(100_000)
            close(writer)
        }
        let outcome = try #require(Subprocess.run(path, []))
        #expect(outcome.output == Data("ran\n".utf8))
    }

    @Test func aMissingProgramIsNil() {
        #expect(Subprocess.run("/nonexistent/program", []) == nil)
    }

    @Test func aProgramThatIgnoresItsInputDoesNotHurtTheCaller() throws {
        let big = Data(repeating: 0x61, count: 4 << 20)
        let outcome = try #require(Subprocess.run("/bin/true", [], input: big))
        #expect(outcome.exitStatus == 0)
    }
}
