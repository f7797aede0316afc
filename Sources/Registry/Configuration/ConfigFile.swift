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
        // Sized by fstat, read to the end (one byte more shows a file that grew).
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            filled += n
        }
        guard filled <= maxBytes, filled < bytes.count else { return nil }
        bytes.removeLast(bytes.count - filled)
        return bytes
    }
}
