import Foundation
import Glibc
import JSON
import TestFixtures
import Testing

@testable import ServerCore

/// A control group of the pids controller made for one test (cgroup v1's
/// `pids` hierarchy, or v2's), whose tasks are killed and which is removed
/// at the end.
private struct PidsGroup {
    let directory: String

    init() throws {
        let name = "ocirpc-test-\(UUID().uuidString)"
        let v1 = "/sys/fs/cgroup/pids"
        directory = FileManager.default.fileExists(atPath: v1 + "/tasks") ? v1 + "/" + name : "/sys/fs/cgroup/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    }

    /// Sets `pids.max`.
    func limit(_ tasks: Int) throws {
        try Data(String(tasks).utf8).write(to: URL(fileURLWithPath: directory + "/pids.max"))
    }

    var current: Int { Int(read("pids.current")) ?? -1 }

    /// A launcher that moves the server into the group.
    var launcher: [String] { ["/bin/sh", "-c", #"echo $$ > "$0/cgroup.procs" && exec "$@""#, directory] }

    /// Kills what is left in the group (SIGKILL: a server stuck for want of
    /// a thread does not end on SIGTERM) and removes it.
    func remove() {
        for pid in read("cgroup.procs").split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        var tries = 0
        while rmdir(directory) != 0 && errno == EBUSY && tries < 500 {
            tries += 1
            usleep(10_000)
        }
    }

    private func read(_ name: String) -> String {
        ((try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The limit on tasks (a container's `--pids-limit`, a unit's `TasksMax`,
/// `ulimit -u`): libdispatch waits for ever for a thread it cannot start,
/// so the server checks its room at start, and its own threads fail a call
/// rather than hang it when they cannot start later.
@Suite(.serialized) struct TaskLimit {
    /// With room for 3 more tasks, the server used to answer nothing and
    /// never end, not even on SIGTERM: libdispatch retried its threads
    /// for ever. It now says why at start.
    @Test func aServerWithoutRoomForItsThreadsSaysSoAtStart() async throws {
        let group = try PidsGroup()
        defer { group.remove() }
        try group.limit(4)
        let p = try ServerProcess(launcher: group.launcher)
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"ec.oci.image_manifest","params":["localhost:9/x:1"]}"#)
        p.closeInput()
        #expect(await p.waitForExit(seconds: 20) == 2)
        #expect(p.stdout.isEmpty)
        let lines = p.stderr.split(separator: "\n").filter { !$0.hasPrefix("==") }
        #expect(lines.count == 1, "\(p.stderr)")
        #expect(lines.first?.contains("pids.max 4") == true, "\(p.stderr)")
    }

    /// A call whose HTTP engine cannot start its thread fails with
    /// `thread_limit`, and the next call, with room again, starts it. The
    /// engine's loop used to be run in the calling thread instead, under
    /// the lock every later call waits for: the server answered nothing
    /// more and never ended.
    @Test func callsWhoseThreadCannotStartFailWithThreadLimitAndTheNextStartsIt() async throws {
        let group = try PidsGroup()
        defer { group.remove() }
        try group.limit(100)
        let p = try ServerProcess(["--retries", "0"], launcher: group.launcher)
        // The task pool's threads started first, all it starts for calls
        // this light, and the calls sent one at a time: with no room, the
        // pool waits for a thread of its own that it lacks (the limit's
        // row in SECURITY.md), which is not what this test is about.
        for id in 0..<8 { p.sendLine(#"{"jsonrpc":"2.0","id":"s\#(id)","method":"server.stats"}"#) }
        #expect(await p.waitForMessages(8, seconds: 20).count == 8)
        try group.limit(group.current)
        var refused: [JSONValue] = []
        for id in 1...5 {
            p.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["127.0.0.1:9/x:\#(id)"]}"#)
            if let answer = await p.waitForMessages(8 + id, seconds: 20).dropFirst(8 + id - 1).first {
                refused.append(answer)
            }
        }
        #expect(refused.count == 5, "\(p.stderr)")
        for answer in refused {
            #expect(answer["error"]?["code"] == -32005, "\(answer)")
            #expect(answer["error"]?["data"]?["reason"] == "thread_limit", "\(answer)")
            #expect(answer["error"]?["data"]?["retryable"] == true, "\(answer)")
        }
        try group.limit(100)
        p.sendLine(#"{"jsonrpc":"2.0","id":6,"method":"ec.oci.image_manifest","params":["127.0.0.1:9/x:6"]}"#)
        let last = await p.waitForMessages(14, seconds: 20).last
        #expect(last?["error"]?["data"]?["reason"] == "connection_failed", "\(String(describing: last))")
        p.closeInput()
        #expect(await p.waitForExit(seconds: 20) == 0)
    }

    /// The pool's idle threads end after a few seconds; when other tasks
    /// of the group have taken their room meanwhile, the server cannot
    /// start one again. SIGTERM used to wait for one for ever (libdispatch's
    /// signal sources run on its threads): it is now taken on the main
    /// thread, which drains the session there.
    @Test func aSignalEndsAServerWhoseRoomForTasksShrankWhileItRan() async throws {
        let group = try PidsGroup()
        defer { group.remove() }
        try group.limit(100)
        let p = try ServerProcess(launcher: group.launcher)
        for id in 0..<8 { p.sendLine(#"{"jsonrpc":"2.0","id":"s\#(id)","method":"server.stats"}"#) }
        #expect(await p.waitForMessages(8, seconds: 20).count == 8)
        let busy = group.current
        try group.limit(busy)
        var idle = busy
        for _ in 0..<300 where idle >= busy {
            try await Task.sleep(for: .milliseconds(100))
            idle = group.current
        }
        try #require(idle < busy, "the pool's threads did not end: \(busy) tasks")
        try group.limit(idle)
        p.process.terminate()
        #expect(await p.waitForExit(seconds: 20) == 0, "\(p.stderr)")
        #expect(p.stderr.contains("signal received"), "\(p.stderr)")
    }

    /// `ulimit -u` counts every process of the user, which cannot be read:
    /// when the system's tasks alone could reach it, the server starts the
    /// threads it needs once to see. Too low, it says so (before: it hung);
    /// high enough, it serves.
    @Test func aUsersProcessLimitIsProbedAtStart() async throws {
        for (limit, status) in [(6, 2), (TaskHeadroom.needed() + 4, 0)] as [(Int, Int32)] {
            // In a group of its own, for the kill at the end; as a user no
            // other process runs as (`nobody` may have some, and the limit
            // counts them), since root is not held to `ulimit -u`.
            let group = try PidsGroup()
            defer { group.remove() }
            let p = try ServerProcess(
                launcher: group.launcher + [
                    "/bin/bash", "-c", #"ulimit -u "$0" && exec /usr/bin/setpriv "$@""#, String(limit),
                    "--reuid", "61234", "--regid", "61234", "--clear-groups",
                ])
            p.closeInput()
            #expect(await p.waitForExit(seconds: 20) == status, "ulimit -u \(limit): \(p.stderr)")
            if status == 2 {
                #expect(p.stderr.contains("ulimit -u (6 processes for the user)"), "\(p.stderr)")
            } else {
                #expect(p.stderr.isEmpty, "\(p.stderr)")
            }
        }
    }
}

@Suite struct TaskHeadroomReading {
    @Test func theSystemsTasksAreLoadavgsFourthField() {
        #expect(TaskHeadroom.systemTasks(loadavg: "0.84 0.43 0.93 1/121 31805\n") == 121)
        #expect(TaskHeadroom.systemTasks(loadavg: "0.84 0.43 0.93\n") == nil)
        #expect(TaskHeadroom.systemTasks(loadavg: "0.84 0.43 0.93 121 1\n") == nil)
    }

    @Test(arguments: [(1, 6), (2, 7), (64, 69)])
    func theServerNeedsFiveThreadsAndOnePerProcessor(processors: Int, needed: Int) {
        #expect(TaskHeadroom.needed(processors: processors) == needed)
    }
}
