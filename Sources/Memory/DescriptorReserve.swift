import Glibc

/// The file descriptors the process keeps free, beside the bytes
/// `MemoryBudget` keeps.
///
/// Every socket, download and layer being read takes a descriptor from one
/// per-process limit (`RLIMIT_NOFILE`), and some takers can neither be
/// refused nor told: libdispatch's worker monitor opens `/proc/<tid>/stat`
/// every second and stops the process when it cannot (a server at the
/// limit died that way, SIGILL), libcurl's resolver opens a socket pair per
/// lookup. So a descriptor the server opens for a call that falls among the
/// last `reserved` below the limit is closed at once, and the call fails
/// with `descriptor_limit` (retryable). Descriptors are handed out lowest
/// first: one numbered that high means those below it are all taken.
public enum DescriptorReserve {
    /// The soft limit on open files when first asked (after `raiseLimit`).
    public static let limit: Int = min(ResourceLimit.soft(Int32(RLIMIT_NOFILE.rawValue)) ?? .max, Int(Int32.max))

    /// Descriptors left to what cannot be refused: an eighth of the limit,
    /// at least 16 and at most 1,024.
    public static let reserved = min(1024, max(16, limit / 8))

    /// Whether `fd`, just opened for a call, leaves the reserve untouched.
    @inline(__always)
    public static func admits(_ fd: Int32) -> Bool { Int(fd) < limit - reserved }

    /// Whether `error` (an `errno`) says the process or the system has no
    /// descriptor left.
    public static func isExhaustion(_ error: Int32) -> Bool { error == EMFILE || error == ENFILE }

    /// `fd` when it leaves the reserve untouched; otherwise it is closed
    /// and -1 is returned with `errno` set to `EMFILE`, as if the open had
    /// failed at the limit. A negative `fd` is returned as it is.
    public static func admitted(_ fd: Int32) -> Int32 {
        guard fd >= 0, !admits(fd) else { return fd }
        close(fd)
        errno = EMFILE
        return -1
    }

    /// Raises the soft limit on open files to the hard limit, as Go's
    /// runtime does at start (the original builtins run with it): distros
    /// set a soft limit of 1,024 for programs that use `select`, which this
    /// one does not. Call before anything asks for `limit`.
    public static func raiseLimit() {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0, limits.rlim_cur < limits.rlim_max else {
            return
        }
        limits.rlim_cur = limits.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
    }

    /// The message of a call refused for want of descriptors.
    public static var refusal: String {
        "the server is at its limit of open files (\(limit), \(reserved) of them kept in reserve); try again when fewer calls are running, or raise the limit (ulimit -n)"
    }
}
