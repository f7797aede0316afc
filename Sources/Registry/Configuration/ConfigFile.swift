import Glibc

/// Reads a configuration file (`registries.conf`, `auth.json`, Docker's
/// `config.json`) whole with plain system calls: the user's own files, read
/// once at start, where Foundation's file reading costs a process's start
/// more than the read does.
enum ConfigFile {
    /// The largest configuration file read; a larger one reads as unreadable.
    static let maxBytes = 16 << 20

    /// The bytes of the regular file at `path`; nil when it is missing,
    /// unreadable, not a regular file, or over `maxBytes`.
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) <= maxBytes else {
            return nil
        }
        guard case .bytes(let bytes) = WholeFile.read(fd, size: Int(status.st_size)) else { return nil }
        return bytes
    }
}
