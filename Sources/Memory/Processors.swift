import CSystem

/// The processors the process may run on (its affinity), as libdispatch
/// counts them for its pool.
public enum Processors {
    public static var available: Int { max(1, Int(ocirpc_processors_available())) }
}
