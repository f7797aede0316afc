import Registry
import Synchronization

/// A blob's download under way, and how far it has come (`progress`), so
/// that a reader can follow it (`FollowedDownload`) and the caller can
/// start the next one before this one is read (`image_files` downloads the
/// layer below the one it reads). The download runs in a task of its own,
/// with the caller's task-locals; `abandon()` stops it and removes its
/// file, and so, later, does letting the last reference go unless the
/// blob was handed over or abandoned already.
final class BlobDownload: Sendable {
    let progress: DownloadProgress
    private let task: Task<VerifiedBlob, any Error>
    /// `blob` gave the verified blob to a caller, whose file it is since,
    /// or `abandon()` removed it: nothing is left to remove.
    private let settled = Atomic(false)

    /// Starts downloading: `fetch` writes the blob, telling `progress`.
    init(_ fetch: @escaping @Sendable (DownloadProgress) async throws -> VerifiedBlob) {
        let progress = DownloadProgress()
        self.progress = progress
        task = Task {
            do {
                let blob = try await fetch(progress)
                progress.end(verified: blob.file.path)
                return blob
            } catch {
                progress.end(verified: nil)
                throw error
            }
        }
    }

    /// The verified blob, once downloaded; its file is the caller's.
    var blob: VerifiedBlob {
        get async throws {
            let blob = try await task.value
            settled.store(true, ordering: .releasing)
            return blob
        }
    }

    /// Stops the download and its reader; they end within a chunk.
    func cancel() {
        task.cancel()
        progress.cancel()
    }

    /// Stops the download, waits for it to end, and removes its file.
    func abandon() async {
        cancel()
        (try? await task.value)?.discard()
        settled.store(true, ordering: .releasing)
    }

    deinit {
        task.cancel()
        guard !settled.load(ordering: .acquiring) else { return }
        Task { [task] in (try? await task.value)?.discard() }
    }
}
