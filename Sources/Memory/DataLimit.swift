import CSystem
import Glibc

/// The limit on the process's data (`ulimit -d`, `RLIMIT_DATA`). Since
/// Linux 4.7 it counts every private writable mapping: the heap, and each
/// thread's stack. Past it an allocation fails, which stops a Swift
/// program, and a thread whose stack cannot be mapped does not start,
/// which libdispatch waits on for ever: at 50 MB the server hung on 60
/// calls in some runs, and above that its 2 GiB budget let a large answer
/// pass the limit. So the budgets' defaults stay under what the limit
/// leaves past the threads' stacks, and a limit that leaves too little is
/// said at start.
public enum DataLimit {
    /// The heap's own share beside what the budgets count: 4 MiB at start,
    /// with room for malloc's arenas to grow.
    public static let heapBytes = 16 << 20
    /// Stack of each of the server's own threads (reader, writer, HTTP
    /// engine: `startThreadIfPossible`'s default).
    public static let ownThreadStackBytes = 8 << 20
    /// The server's own threads.
    public static let ownThreads = 3

    /// The limit in bytes, read once; nil when there is none.
    public static let current: Int? = ResourceLimit.soft(Int32(RLIMIT_DATA.rawValue))

    /// The stack of a thread whose creator names no size (libdispatch's):
    /// `ulimit -s`, or glibc's default without one, and at least
    /// `ThreadStacks.minimumBytes` once `ThreadStacks.raise` ran.
    public static let defaultStackBytes: Int = {
        let bytes = ocirpc_default_thread_stack_bytes()
        return bytes > 0 ? Int(bytes) : 8 << 20
    }()

    /// libdispatch's threads counted: its manager, a worker per processor,
    /// and three more for the pool's growth under load.
    public static func dispatchThreads(processors: Int) -> Int { processors + 4 }

    /// What the process's own data holds: its heap's share and every
    /// thread's stack.
    public static func processBytes(processors: Int, stackBytes: Int = defaultStackBytes) -> Int {
        heapBytes + ownThreads * ownThreadStackBytes + dispatchThreads(processors: processors) * stackBytes
    }

    /// What the limit leaves to what the budgets count, or nil without one.
    public static func usable(
        within limit: Int? = current, processors: Int = Processors.available, stackBytes: Int = defaultStackBytes
    ) -> Int? {
        limit.map { max(0, $0 - processBytes(processors: processors, stackBytes: stackBytes)) }
    }

    /// Why the limit leaves too little to serve, or nil: the process's own
    /// data and the smallest memory budget (16 MiB).
    public static func problem(
        within limit: Int? = current, processors: Int = Processors.available, stackBytes: Int = defaultStackBytes
    ) -> String? {
        guard let limit, let usable = usable(within: limit, processors: processors, stackBytes: stackBytes),
            usable < 16 << 20
        else { return nil }
        let own = processBytes(processors: processors, stackBytes: stackBytes)
        return
            "ulimit -d (\(limit >> 10) KiB of data) is too little: the server's heap and its \(ownThreads + dispatchThreads(processors: processors)) threads' stacks (\(stackBytes >> 10) KiB each for libdispatch's, by ulimit -s) take about \(own >> 20) MiB, and its memory budget needs 16 MiB more"
    }
}
