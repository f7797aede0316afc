import Memory

/// What the downloads in flight may hold on disk together
/// (`--max-download-bytes`). Each download is bounded on its own
/// (`RegistryClient.maxBlobBytes`), but many calls at once multiply that
/// bound, and the download directory is often memory (a tmpfs `/tmp`).
/// A download is taken from it as it is written, and given back when the
/// last copy of the blob that holds its file goes (`VerifiedBlob.charge`);
/// one that would pass it fails (`download_limit`, retryable).
public final class DownloadBudget: Sendable {
    /// The default limit: eight blobs at the largest size downloaded.
    public static let defaultLimit = 4 << 30

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
