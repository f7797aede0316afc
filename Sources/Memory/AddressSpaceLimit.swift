import Glibc

/// The limit on the process's address space (`ulimit -v`, `RLIMIT_AS`).
/// Past it every mapping fails, and an allocation that fails stops a
/// Swift program: at 200 MB the server died (SIGSEGV) on its first calls
/// to a registry, and under more it could die on any large answer while
/// its 2 GiB budget had room. So the budgets' defaults stay under what the limit leaves, and a
/// limit that leaves too little is said at start.
public enum AddressSpaceLimit {
    /// What the process maps besides what the budgets count: its code and
    /// libraries (libcurl's load included), thread stacks and malloc's
    /// arenas. Calls were served at 450 MB; libcurl failed to load at
    /// 400 MB, and the process died at 200 MB.
    public static let processBytes = 512 << 20

    /// The limit in bytes, read once; nil when there is none.
    public static let current: Int? = ResourceLimit.soft(Int32(RLIMIT_AS.rawValue))

    /// What the limit leaves to what the budgets count, or nil without one.
    public static func usable(within limit: Int? = current) -> Int? {
        limit.map { max(0, $0 - processBytes) }
    }

    /// Why the limit leaves too little to serve, or nil: the process's
    /// own mappings and the smallest memory budget (16 MiB).
    public static func problem(within limit: Int? = current) -> String? {
        guard let limit, let usable = usable(within: limit), usable < 16 << 20 else { return nil }
        return
            "ulimit -v (\(limit >> 10) KiB of address space) is too little: the server maps about \(processBytes >> 20) MiB of its own, and its memory budget needs 16 MiB more"
    }
}

/// The memory the process may take, for the budgets' defaults: the lowest
/// of a container's limit (`ContainerMemoryLimit`) and what the address
/// space and data limits leave (`AddressSpaceLimit`, `DataLimit`), or nil
/// when none limits it.
public enum MemoryLimit {
    public static let current: Int? = lowest(
        lowest(ContainerMemoryLimit.current, AddressSpaceLimit.usable()), DataLimit.usable())

    package static func lowest(_ a: Int?, _ b: Int?) -> Int? {
        switch (a, b) {
        case (let a?, let b?): min(a, b)
        case (let a?, nil): a
        case (nil, let b?): b
        case (nil, nil): nil
        }
    }
}
