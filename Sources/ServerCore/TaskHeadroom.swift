import Glibc
import Locking
import Memory

/// Whether the process may start the threads it needs to serve.
///
/// libdispatch, which runs the server's tasks, starts its threads as work
/// comes, and when the system refuses one (`EAGAIN`) it sleeps and tries
/// again, for ever: a server started where the limit on tasks left too
/// little room answered nothing and hung (its SIGTERM too, which needs a
/// thread to be handled). So the room is checked at start, and the server
/// says why it cannot run rather than hang. The threads of its own (the
/// reader, the writer, the HTTP engine's) fail a call with `thread_limit`
/// when they cannot start later.
package enum TaskHeadroom {
    /// Threads a server starts beyond its main one: its reader and writer,
    /// libdispatch's manager, a worker per processor and one more, and the
    /// HTTP engine's. Measured on 2 processors, with a name to look up on
    /// each call: room for 7 served every call, 6 failed them with
    /// `thread_limit`, 4 hung in libdispatch; before, 7 hung too.
    package static func needed(processors: Int = Processors.available) -> Int { 5 + processors }

    /// Why the server cannot start the threads it needs here, or nil.
    package static func problem() -> String? {
        let needed = needed()
        if let tightest = ControlGroups.taskRoom(), tightest.room < needed {
            return
                "the control group \(tightest.directory) has room for \(tightest.room) more tasks (pids.max \(tightest.max), pids.current \(tightest.current)); the server needs \(needed) threads (5 and one per processor)"
        }
        if let limit = userTaskLimit(), !roomUnderUserLimit(limit, needed: needed) {
            return
                "ulimit -u (\(limit) processes for the user) leaves no room for the \(needed) threads the server needs (5 and one per processor)"
        }
        return nil
    }

    /// `ulimit -u` when it applies to the process (it does not to root) and
    /// is not unlimited.
    static func userTaskLimit() -> Int? {
        geteuid() == 0 ? nil : ResourceLimit.soft(Int32(__RLIMIT_NPROC.rawValue))
    }

    /// Whether the user's limit leaves room: surely when every task of the
    /// system together (`/proc/loadavg`) is below it by `needed`; otherwise
    /// (the user's own count cannot be read) by starting them.
    static func roomUnderUserLimit(_ limit: Int, needed: Int) -> Bool {
        if let text = ControlGroups.file("/proc/loadavg"), let tasks = systemTasks(loadavg: text),
            tasks <= limit - needed
        {
            return true
        }
        return canStartThreads(needed)
    }

    /// The number of tasks of the system: `/proc/loadavg`'s fourth field is
    /// "running/total".
    static func systemTasks(loadavg: String) -> Int? {
        let fields = loadavg.split(separator: " ")
        guard fields.count >= 4, let slash = fields[3].firstIndex(of: "/") else { return nil }
        return Int(fields[3][fields[3].index(after: slash)...])
    }

}
