import Glibc

/// The process's resource limits (`getrlimit`), read the one way.
package enum ResourceLimit {
    /// The soft limit on `resource` (`RLIMIT_*`), or nil when it is
    /// unlimited or cannot be read.
    package static func soft(_ resource: Int32) -> Int? {
        var limits = rlimit()
        guard getrlimit(resource, &limits) == 0, limits.rlim_cur != rlim_t.max else { return nil }
        return Int(min(limits.rlim_cur, rlim_t(Int.max)))
    }
}
