import Glibc

/// The control groups the process runs in (a container's, a systemd
/// unit's), as `/proc/self/cgroup` names them: where to read a
/// controller's limits, from the process's own group up to the root.
package enum ControlGroups {
    /// A group's directory and the cgroup version of its hierarchy (1 or 2).
    package struct Group: Equatable {
        package let directory: String
        package let version: Int
    }

    /// The directories of `controller`'s groups that hold the process, its
    /// own first, then each one above it. cgroup v2 (the unified hierarchy,
    /// mounted at `root` or, beside v1's, at `root/unified`) and v1 (at
    /// `root/<controller>`) both, since a hybrid system may limit in either.
    /// `groups` is `/proc/self/cgroup`'s text.
    package static func holding(
        controller: String, groups: String? = ownGroups, root: String = "/sys/fs/cgroup"
    ) -> [Group] {
        guard let groups else { return [] }
        // Read as bytes: splitting a String splits it into characters first.
        let colon = UInt8(ascii: ":")
        var found: [Group] = []
        for line in Array(groups.utf8).split(separator: UInt8(ascii: "\n")) {
            // hierarchy-id:controllers:path
            guard let first = line.firstIndex(of: colon),
                let second = line[(first + 1)...].firstIndex(of: colon)
            else { continue }
            let controllers = line[(first + 1)..<second]
            let group = String(decoding: line[(second + 1)...], as: UTF8.self)
            if line[..<first].elementsEqual("0".utf8) && controllers.isEmpty {
                for directory in ancestors(group) { found.append(Group(directory: "\(root)\(directory)", version: 2)) }
                for directory in ancestors(group) {
                    found.append(Group(directory: "\(root)/unified\(directory)", version: 2))
                }
            } else if controllers.split(separator: UInt8(ascii: ",")).contains(where: {
                $0.elementsEqual(controller.utf8)
            }) {
                for directory in ancestors(group) {
                    found.append(Group(directory: "\(root)/\(controller)\(directory)", version: 1))
                }
            }
        }
        return found
    }

    /// The group with the least room for more tasks (threads and
    /// processes) under its `pids.max`, among those that hold the process
    /// (cgroup v2 or v1), or nil when none limits tasks.
    package static func taskRoom(
        groups: String? = ownGroups, root: String = "/sys/fs/cgroup"
    ) -> (directory: String, room: Int, max: Int, current: Int)? {
        var tightest: (directory: String, room: Int, max: Int, current: Int)?
        for group in holding(controller: "pids", groups: groups, root: root) {
            guard let maxText = file("\(group.directory)/pids.max"), let max = number(maxText),
                let currentText = file("\(group.directory)/pids.current"), let current = number(currentText)
            else { continue }
            let room = Swift.max(0, max - current)
            if room < tightest?.room ?? .max { tightest = (group.directory, room, max, current) }
        }
        return tightest
    }

    /// `/proc/self/cgroup`'s text, read once.
    package static let ownGroups: String? = file("/proc/self/cgroup")

    /// `path` and each directory above it, `/` as the empty string:
    /// `/a/b` gives `/a/b`, `/a`, ``.
    static func ancestors(_ path: String) -> [String] {
        let bytes = Array(path.utf8)
        var end = bytes.count
        while end > 0 && bytes[end - 1] == UInt8(ascii: "/") { end -= 1 }
        var directories: [String] = []
        while true {
            directories.append(String(decoding: bytes[..<end], as: UTF8.self))
            guard let slash = bytes[..<end].lastIndex(of: UInt8(ascii: "/")) else { break }
            end = slash
        }
        if directories.last != "" { directories.append("") }
        return directories
    }

    /// A limit or counter file's number; nil for `max` or anything past
    /// 2^62 (v1 writes 2^63 rounded down to a page for no memory limit).
    package static func number(_ text: String) -> Int? {
        let word = text.utf8.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: " ") }
        guard let number = Int(Substring(word)), number >= 0, number < 1 << 62 else { return nil }
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
