import Reasons
import FoundationEssentials
import Glibc
import Memory

/// A blob downloaded to a file and verified against its digest. The file
/// belongs to the caller (`discard()` it when done).
public struct VerifiedBlob: Sendable {
    public let file: URL
    public let size: Int
    public let digest: Digest
    /// What the download holds of the download budget: given back when the
    /// file is discarded, or when the last copy of the blob goes. Nil for a
    /// blob that was not downloaded, or not counted.
    package let charge: MemoryShare?

    /// A blob already at `file`, verified by whoever put it there.
    package init(file: URL, size: Int, digest: Digest, charge: MemoryShare? = nil) {
        self.file = file
        self.size = size
        self.digest = digest
        self.charge = charge
    }

    /// Deletes the file, and gives back what it held of the download
    /// budget then: a copy left elsewhere (a finished task's result) does
    /// not hold it for a file that is gone.
    public func discard() {
        try? FileManager.default.removeItem(at: file)
        charge?.giveBackAll()
    }

    /// Reads the whole file (for blobs small enough to hold).
    public func contents() throws -> Data { try Data(contentsOf: file) }
}

extension RegistryClient {
    /// Downloads the blob `reference` names (a digest reference), following
    /// redirects, streaming to a temporary file and hashing the bytes as they
    /// arrive; the digest must match. A mismatch deletes the file and throws
    /// `digest_mismatch`. A blob over `limit` bytes (at most `maxBlobBytes`)
    /// is refused as `blob_too_large` as soon as the download passes it.
    /// `progress` hears of each file an attempt writes, as it is written.
    public func fetchBlob(
        _ reference: ImageReference, directory: URL? = nil, limit: Int = RegistryClient.maxBlobBytes,
        progress: DownloadProgress? = nil
    ) async throws(RegistryError) -> VerifiedBlob {
        let directory = if let directory { directory } else { try DownloadDirectory.shared() }
        let limit = min(limit, Self.maxBlobBytes)
        return try await viaMirrors(reference) { (endpoint) async throws(RegistryError) -> VerifiedBlob in
            try await fetchBlob(at: endpoint, directory: directory, limit: limit, progress: progress)
        }
    }

    /// The largest blob downloaded: 512 MiB.
    public static let maxBlobBytes = 512 << 20

    private func fetchBlob(
        at reference: ImageReference, directory: URL, limit: Int, progress: DownloadProgress?
    ) async throws(RegistryError) -> VerifiedBlob {
        guard let digest = reference.digest else {
            throw RegistryError(
                .invalidReference, reason: .digestRequired, message: "\(reference) does not name a digest")
        }
        let url = try url(reference, "blobs/\(digest)")
        let (file, response) = try await download(
            url, for: reference, to: directory, hashing: digest.algorithm, limit: limit, kind: .blob,
            progress: progress)
        // A `206` answers a download resumed after it broke off (its file
        // holds the whole blob); asked for the whole, a registry's `206` is refused.
        guard let file, response.status == 200 || (response.status == 206 && file.resumedFrom > 0) else {
            if let file { try? FileManager.default.removeItem(at: file.url) }
            throw Self.error(for: response, notFoundReason: .blobUnknown, what: "blob \(reference)")
        }
        guard file.digest == digest else {
            try? FileManager.default.removeItem(at: file.url)
            throw RegistryError(
                .integrity, reason: .digestMismatch, message: "blob \(reference) hashes to \(file.digest)")
        }
        if let declared = response.header("Content-Length").flatMap(ResponseHeaders.length),
            declared != file.size - file.resumedFrom
        {
            try? FileManager.default.removeItem(at: file.url)
            throw RegistryError(
                .integrity, reason: .sizeMismatch,
                message: "blob \(reference) is \(file.size) bytes, the registry said \(declared)")
        }
        return VerifiedBlob(file: file.url, size: file.size, digest: file.digest, charge: file.charge)
    }
}
