import FoundationEssentials
import Glibc

/// A response body streamed to disk, hashed as it was written.
package struct DownloadedFile: Sendable {
    package let url: URL
    package let digest: Digest
    package let size: Int
}
