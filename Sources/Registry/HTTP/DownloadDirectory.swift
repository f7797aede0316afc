import Reasons
import CSystem
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
            // Another user who can rename what is in the parent could swap
            // the directory, or a file in it once checked, for their own.
            if let problem = PrivateDirectory.problemMaking("\(parent)/ocirpc-\(getpid())") {
                return .failure(
                    RegistryError(
                        .internal, reason: .ioError,
                        message:
                            "downloads are refused: \(problem); set TMPDIR to a directory other users cannot change"))
            }
            sweepStale(in: parent)
            var template = Array("\(parent)/ocirpc-\(getpid())-XXXXXX".utf8CString)
            guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                return .failure(
                    RegistryError(
                        .internal, reason: .ioError,
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
    /// Names are read with `readdir` and matched on their bytes: a
    /// `$TMPDIR` holding 11,000 entries, 5,500 of them `ocirpc-...` names of
    /// other kinds, cost 137 M instructions read as `String`s and split.
    static func sweepStale(in parent: String) {
        guard let directory = opendir(parent) else { return }
        defer { closedir(directory) }
        let own = getpid()
        // The name is read where it lies, to its NUL (`ocirpc_next_entry_name`):
        // copying the whole `dirent` read past the end of the last one in
        // `readdir`'s buffer, which crashed when that was a page's end.
        while let name = ocirpc_next_entry_name(directory) {
            let bytes = UnsafeBufferPointer(
                start: UnsafeRawPointer(name).assumingMemoryBound(to: UInt8.self), count: strlen(name))
            guard let (pid, name) = staleCandidate(bytes[...]), pid != own else { continue }
            var info = stat()
            let path = parent + "/" + name
            guard lstat(path, &info) == 0, info.st_uid == getuid(), (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// The pid in a name `ocirpc-<digits>-<suffix>` (the suffix holding no
    /// `-`), and the name; nil for any other name.
    static func staleCandidate(_ name: Slice<UnsafeBufferPointer<UInt8>>) -> (pid: Int32, name: String)? {
        let prefix = "ocirpc-".utf8
        guard name.starts(with: prefix) else { return nil }
        var pid: Int32 = 0
        var index = name.startIndex + prefix.count
        var digits = 0
        while index < name.endIndex, name[index] >= 0x30, name[index] <= 0x39 {
            let (times, overflow) = pid.multipliedReportingOverflow(by: 10)
            let (sum, overflowAgain) = times.addingReportingOverflow(Int32(name[index] - 0x30))
            guard !overflow, !overflowAgain else { return nil }
            pid = sum
            digits += 1
            index += 1
        }
        guard digits > 0, index < name.endIndex, name[index] == UInt8(ascii: "-") else { return nil }
        let suffix = name[(index + 1)...]
        guard !suffix.isEmpty, !suffix.contains(UInt8(ascii: "-")) else { return nil }
        return (pid, String(decoding: name, as: UTF8.self))
    }
}
