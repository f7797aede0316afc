import Archive
import Glibc
import Locking
import Memory
import Registry

/// A blob's file read while its download writes it (`DownloadProgress`):
/// each read waits for bytes the download has not written yet, and the end
/// comes only when the download is verified as the file read. Anything else
/// (another attempt began, the download failed, the blob came from a file
/// at hand) loses the thread: the read throws, `lost` is set, and the
/// caller reads the verified file instead. Untrusted until then: a result
/// made from it counts only if `followed(verifiedPath:)`. Read by one
/// reader at a time; its caller asks `followed` once that reader is done.
final class FollowedDownload: ByteStream, @unchecked Sendable {
    /// The readers that may follow downloads at once, each on a thread of
    /// its own: 64. Past that, a blob is read once downloaded, as before.
    static let readers = ThreadAllowance(maxThreads: 64)

    private let progress: DownloadProgress
    private var fd: Int32 = -1
    /// The file followed, once the download began one.
    private(set) var path: String?
    private var offset = 0
    /// The thread was lost: the bytes read are not the verified blob's.
    private(set) var lost = false

    init(_ progress: DownloadProgress) { self.progress = progress }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether every byte read came from the file verified as the blob.
    func followed(verifiedPath: String) -> Bool { !lost && path == verifiedPath }

    /// The first `count` bytes (fewer only if the blob is shorter), without
    /// moving the read position: what the compression is told by.
    func peek(_ count: Int) throws(ArchiveError) -> [UInt8] {
        let state = try waitFor(count)
        var bytes = [UInt8](repeating: 0, count: min(count, state.written))
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard got == bytes.count else { throw lose("the downloaded file could not be read") }
        return bytes
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let state = try waitFor(offset + 1)
        let count = min(buffer.count, state.written - offset)
        guard count > 0 else { return 0 }
        while true {
            let got = pread(fd, buffer.baseAddress, count, off_t(offset))
            if got > 0 {
                offset += got
                return got
            }
            if got < 0 && errno == EINTR { continue }
            throw lose("the downloaded file could not be read")
        }
    }

    /// Waits until the file followed holds `bytes` bytes, or the download
    /// ended verified as that file (then it holds all there is); opens the
    /// file when the first attempt begins it.
    private func waitFor(_ bytes: Int) throws(ArchiveError) -> DownloadProgress.State {
        guard !lost else { throw ArchiveError(.io, reason: .ioError, message: "the download started over") }
        while true {
            let followed = path
            let state = progress.wait { state in
                state.cancelled || state.ended != nil || state.path != followed || state.written >= bytes
            }
            if state.cancelled { throw ArchiveError(.cancelled, reason: .cancelled, message: "cancelled") }
            guard let followed else {
                guard let begun = state.path else { throw lose("no file was downloaded") }
                fd = DescriptorReserve.admitted(open(begun, O_RDONLY | O_CLOEXEC))
                guard fd >= 0 else {
                    if DescriptorReserve.isExhaustion(errno) { throw .descriptorLimit }
                    throw lose("the downloaded file is gone")
                }
                path = begun
                continue
            }
            guard state.path == followed else { throw lose("the download started over") }
            if state.written >= bytes { return state }
            // Ended, with fewer bytes: the end of the blob, if it is this file.
            guard state.ended == .verified(path: followed) else {
                throw lose("the download did not end with this file")
            }
            return state
        }
    }

    private func lose(_ message: String) -> ArchiveError {
        lost = true
        return ArchiveError(.io, reason: .ioError, message: message)
    }
}
