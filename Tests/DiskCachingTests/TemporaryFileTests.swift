import CSystem
import Foundation
import Glibc
import Testing

/// The disk cache's temporary files are created close-on-exec: a
/// credential helper spawned while one is open must not inherit it.
@Suite struct TemporaryFileTests {
    @Test func aTemporaryFileIsCloseOnExecFromItsCreation() throws {
        let directory = temporaryCachePath()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var template = Array((directory + "/write-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { ocirpc_mkstemp_cloexec($0.baseAddress!) }
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        #expect(!path.hasSuffix("XXXXXX"))
        #expect(FileManager.default.fileExists(atPath: path))
    }
}
