import Glibc

/// An open regular file read to its end, in one buffer sized by `fstat`:
/// what configuration files and the disk cache's files are read with.
package enum WholeFile: Equatable {
    case bytes([UInt8])
    /// The file held more than the size it was opened at (appended to meanwhile).
    case grew
    /// `read` failed with this `errno`.
    case failed(Int32)

    /// Reads `fd` from where it is to its end, expecting `size` bytes (a file
    /// replaced meanwhile is another inode: the descriptor still reads the
    /// old one whole).
    package static func read(_ fd: Int32, size: Int) -> WholeFile {
        // One byte more than expected shows a file that grew.
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var filled = 0
        while true {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failed(errno) }
            if n == 0 { break }
            filled += n
            guard filled < bytes.count else { return .grew }
        }
        bytes.removeLast(bytes.count - filled)
        return .bytes(bytes)
    }
}
