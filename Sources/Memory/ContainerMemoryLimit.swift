import Glibc

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
    package static func read(groups: String? = file("/proc/self/cgroup"), root: String = "/sys/fs/cgroup") -> Int? {
        guard let groups else { return nil }
        var lowest: Int?
        func consider(_ path: String) {
            guard let text = file(path), let limit = limit(text) else { return }
            lowest = min(lowest ?? limit, limit)
        }
        for line in groups.split(separator: "\n") {
            // hierarchy-id:controllers:path
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",")
            let group = String(fields[2])
            if fields[0] == "0" && controllers.isEmpty {
                for directory in ancestors(group) { consider("\(root)\(directory)/memory.max") }
                // Mounted as cgroup2 beside v1's hierarchies (hybrid).
                for directory in ancestors(group) { consider("\(root)/unified\(directory)/memory.max") }
            } else if controllers.contains("memory") {
                for directory in ancestors(group) { consider("\(root)/memory\(directory)/memory.limit_in_bytes") }
            }
        }
        return lowest
    }

    /// `path` and each directory above it, `/` as the empty string:
    /// `/a/b` gives `/a/b`, `/a`, ``.
    static func ancestors(_ path: String) -> [String] {
        var directories: [String] = []
        var current = Substring(path)
        while current.hasSuffix("/") { current = current.dropLast() }
        while true {
            directories.append(String(current))
            guard let slash = current.lastIndex(of: "/") else { break }
            current = current[..<slash]
        }
        if directories.last != "" { directories.append("") }
        return directories
    }

    /// A limit file's number; nil for `max` or anything past 2^62 (v1
    /// writes 2^63 rounded down to a page for no limit).
    static func limit(_ text: String) -> Int? {
        let value = text.split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init) ?? ""
        guard let number = Int(value), number > 0, number < 1 << 62 else { return nil }
        return number
    }

    /// A small text file's contents (at most 64 KiB), or nil. Read in
    /// chunks to its end: `/proc` and cgroup files say their size is 0, so
    /// `WholeFile`'s read of the size `fstat` gives would find nothing.
    package static func file(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
