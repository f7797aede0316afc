/// The memory limit of the control group the process runs in: a
/// container's, or a systemd unit's. The memory budget's and the content
/// cache's defaults stay under it (`MemoryBudget.defaultLimit(within:)`),
/// so a flood of large answers is refused with `memory_limit` before the
/// kernel kills the process for the container.
public enum ContainerMemoryLimit {
    /// The limit in bytes for this process, read once; nil when there is
    /// none (or it cannot be read).
    public static let current: Int? = read()

    /// The lowest limit on the process's group and the groups above it, in
    /// bytes: cgroup v2's `memory.max`, or v1's `memory.limit_in_bytes`
    /// (a number near 2^63 there means none). `groups` is
    /// `/proc/self/cgroup`'s text, and `root` where the hierarchies are
    /// mounted.
    package static func read(
        groups: String? = ControlGroups.ownGroups, root: String = "/sys/fs/cgroup"
    ) -> Int? {
        var lowest: Int?
        for group in ControlGroups.holding(controller: "memory", groups: groups, root: root) {
            let name = group.version == 2 ? "memory.max" : "memory.limit_in_bytes"
            guard let text = ControlGroups.file("\(group.directory)/\(name)"), let limit = ControlGroups.number(text),
                limit > 0
            else { continue }
            lowest = min(lowest ?? limit, limit)
        }
        return lowest
    }
}
