import CSystem
import Memory

/// What the downloads in flight may hold on disk together
/// (`--max-download-bytes`). Each download is bounded on its own
/// (`RegistryClient.maxBlobBytes`), but many calls at once multiply that
/// bound, and the download directory is often memory (a tmpfs `/tmp`).
/// A download is taken from it as it is written, and given back when its
/// file is discarded, or when the last copy of the blob that holds it goes
/// (`VerifiedBlob.charge`); one that would pass it fails (`download_limit`,
/// retryable).
public final class DownloadBudget: Sendable {
    /// The default limit: eight blobs at the largest size downloaded.
    public static let defaultLimit = 4 << 30

    /// The default limit for downloads written under `temporary`:
    /// `defaultLimit`, or a quarter of a container's memory limit
    /// (`ContainerMemoryLimit`) when lower and `temporary` is held in
    /// memory (tmpfs, ramfs), whose pages the container is charged for.
    public static func defaultLimit(temporary: String, containerLimit: Int?) -> Int {
        guard let containerLimit, isHeldInMemory(temporary) else { return defaultLimit }
        return min(defaultLimit, max(16 << 20, containerLimit / 4))
    }

    /// Whether the file system `path` is on keeps its files in memory.
    static func isHeldInMemory(_ path: String) -> Bool {
        let tmpfs = 0x0102_1994
        let ramfs = 0x8584_58f6
        let type = ocirpc_filesystem_type(path)
        return type == tmpfs || type == ramfs
    }

    /// The bytes counted: a byte budget of the kind the memory budget is.
    let bytes: MemoryBudget

    public init(limit: Int = DownloadBudget.defaultLimit) { bytes = MemoryBudget(limit: limit) }

    /// The most the downloads in flight may hold, in bytes.
    public var limit: Int { bytes.limit }

    /// What the downloads in flight hold now.
    public var heldBytes: Int { bytes.heldBytes }

    /// Why a download was refused, for its error message.
    var refusal: String {
        "the downloads in flight hold more than \(readableByteCount(limit)) on disk together (--max-download-bytes); retry when they are done"
    }
}
