import Reasons
import FoundationEssentials
import Glibc
import Locking

/// Where downloads are written: a directory of this process's own under the
/// temporary directory (`$TMPDIR`, else `/tmp`), made 0700 so other local
/// users cannot read private layers, and named for the process
/// (`ocirpc-<pid>-XXXXXX`) so that a later server removes what a crashed
/// one left behind. Files in it are created 0600 and close-on-exec.
public enum DownloadDirectory {
    private static let made = Locked<URL?>(nil)

    /// This process's directory, made (and stale ones swept) on first use.
    public static func shared() throws(RegistryError) -> URL {
        let result = made.withLock { (made) -> Result<URL, RegistryError> in
            if let made { return .success(made) }
            let parent = temporaryParent()
            sweepStale(in: parent)
            var template = Array("\(parent)/ocirpc-\(getpid())-XXXXXX".utf8CString)
            guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                return .failure(
                    RegistryError(
                        .unavailable, reason: .ioError,
                        message: "cannot create a private download directory in \(parent) (errno \(errno))"))
            }
            let url = URL(fileURLWithPath: String(cString: path), isDirectory: true)
            made = url
            atexit { DownloadDirectory.removeOwn() }
            return .success(url)
        }
        return try result.get()
    }

    /// Removes this process's directory and what is in it (at exit).
    static func removeOwn() {
        guard let url = made.withLock({ $0 }) else { return }
        try? FileManager.default.removeItem(at: url)
    }

    static func temporaryParent() -> String {
        var parent = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        while parent.count > 1 && parent.hasSuffix("/") { parent.removeLast() }
        return parent
    }

    /// Removes `ocirpc-<pid>-*` directories of ours whose process is gone.
    static func sweepStale(in parent: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix("ocirpc-") {
            let parts = name.split(separator: "-")
            guard parts.count == 3, let pid = Int32(parts[1]), pid != getpid() else { continue }
            var info = stat()
            let path = parent + "/" + name
            guard lstat(path, &info) == 0, info.st_uid == getuid(), (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: path) }
        }
    }
}
