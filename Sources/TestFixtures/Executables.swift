import Foundation
import Glibc

/// Writes programs the tests then run (fake credential helpers, a copy of
/// the binary). The file is written through a close-on-exec descriptor: a
/// child process forked meanwhile by another test must not inherit it open
/// for writing, or running the program fails with "Text file busy" for as
/// long as that child lives.
public enum Executables {
    public static func write(_ contents: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw TestRegistryError("cannot create \(path)") }
        defer { close(fd) }
        let written = contents.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        guard written else { throw TestRegistryError("cannot write \(path)") }
    }

    public static func write(_ script: String, to path: String) throws {
        try write(Data(script.utf8), to: path)
    }
}
