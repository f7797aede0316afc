import CSystem

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
