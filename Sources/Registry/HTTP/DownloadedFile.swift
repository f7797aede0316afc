import FoundationEssentials
import Glibc
import Memory

/// A response body streamed to disk, hashed as it was written.
package struct DownloadedFile: Sendable {
    package let url: URL
    package let digest: Digest
    package let size: Int
    /// What the file holds of the download budget, if it was counted.
    package var charge: MemoryShare? = nil
    /// Bytes an earlier attempt wrote before this one resumed the download
    /// (`PartialDownload`), answered `206` with the rest; 0 for a whole answer.
    package var resumedFrom = 0
}
