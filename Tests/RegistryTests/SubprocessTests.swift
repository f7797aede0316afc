import Foundation
import Testing
@testable import Registry

@Suite struct SubprocessRuns {
    @Test func inputGoesInAndOutputComesBack() throws {
        let outcome = try #require(Subprocess.run("/bin/cat", [], input: Data("hello\nworld".utf8)))
        #expect(outcome.output == Data("hello\nworld".utf8))
        #expect(outcome.exitStatus == 0)
        #expect(!outcome.timedOut)
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

    @Test func outputPastTheLimitIsCut() throws {
        let outcome = try #require(Subprocess.run("/bin/sh", ["-c", "yes"], outputLimit: 100_000))
        #expect(outcome.output.count == 100_000)
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
