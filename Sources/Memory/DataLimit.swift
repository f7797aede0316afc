import CSystem
import Glibc

/// The limit on the process's data (`ulimit -d`, `RLIMIT_DATA`). Since
/// Linux 4.7 it counts every private writable mapping: the heap, and each
/// thread's stack. Past it an allocation fails, which stops a Swift
/// program, and a thread whose stack cannot be mapped does not start,
/// which libdispatch waits on for ever: at 50 MB the server answered
/// nothing and hung, and above that its 2 GiB budget let a large answer
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

/// The processors the process may run on (its affinity), as libdispatch
/// counts them for its pool.
public enum Processors {
    public static var available: Int { max(1, Int(ocirpc_processors_available())) }
}

/// The stacks of the process's threads where the server does not name
/// their size: the main thread's, which grows as far as `ulimit -s`, and
/// libdispatch's, which glibc gives `ulimit -s` at start. Under 28 KiB
/// the server died (SIGSEGV) before its first answer, in the Swift
/// runtime on the main thread. Both get at least 1 MiB (the hard limit
/// permitting), as the server's own threads get 8 MiB: every call was
/// served at 64 KiB, a message nested 500 deep included.
public enum ThreadStacks {
    public static let minimumBytes = 1 << 20

    /// Raises both to `minimumBytes` when lower: first thing in `main`,
    /// before the main thread's stack grows and any thread starts, and
    /// before `DataLimit` reads the default.
    public static func raise() {
        _ = ocirpc_raise_stack_limit(Int64(minimumBytes))
        _ = ocirpc_raise_default_thread_stack(Int64(minimumBytes))
    }
}
