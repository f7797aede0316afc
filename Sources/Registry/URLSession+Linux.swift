import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Locking

/// The one place that works around FoundationNetworking on Linux.
///
/// - A 401 with a `WWW-Authenticate` challenge never completes there unless
///   the session delegate answers the challenge, and answering "default
///   handling" hangs too. So the delegate keeps the 401 response, cancels
///   the challenge, and `fetch` hands the kept response back as an
///   ordinary answer, so the auth layer can read the challenge.
/// - Redirects: task-level delegates are never asked on Linux, so the session
///   delegate strips `Authorization` when a redirect leaves the host (blob
///   downloads are often redirected to storage).
final class SessionDelegate: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    private let challenged = Locked([Int: HTTPURLResponse]())

    /// Performs `request`; a 401 comes back as a response with an empty body.
    func fetch(_ request: URLRequest, in session: URLSession) async throws -> (Data, HTTPURLResponse) {
        let box = TaskBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Data, HTTPURLResponse), any Error>) in
                let task = session.dataTask(with: request) { [self] data, response, error in
                    let id = box.task?.taskIdentifier ?? -1
                    let kept = challenged.withLock { $0.removeValue(forKey: id) }
                    if let http = response as? HTTPURLResponse, error == nil {
                        continuation.resume(returning: (data ?? Data(), http))
                    } else if let kept {
                        continuation.resume(returning: (Data(), kept))
                    } else {
                        continuation.resume(throwing: error ?? URLError(.badServerResponse))
                    }
                }
                box.task = task
                task.resume()
            }
        } onCancel: {
            box.task?.cancel()
        }
    }

    /// Downloads `request` into a new file in `directory` (memory stays flat
    /// whatever the size); a 401 comes back as a response with no file.
    func download(
        _ request: URLRequest, in session: URLSession, to directory: URL
    ) async throws -> (URL?, HTTPURLResponse) {
        let box = DownloadBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(URL?, HTTPURLResponse), any Error>) in
                let task = session.downloadTask(with: request) { [self] location, response, error in
                    let id = box.task?.taskIdentifier ?? -1
                    let kept = challenged.withLock { $0.removeValue(forKey: id) }
                    if let http = response as? HTTPURLResponse, error == nil, let location {
                        // The system deletes `location` when this returns: move it.
                        let destination = directory.appendingPathComponent("ocirpc-blob-\(UUID().uuidString)")
                        do {
                            try FileManager.default.moveItem(at: location, to: destination)
                            continuation.resume(returning: (destination, http))
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    } else if let kept {
                        continuation.resume(returning: (nil, kept))
                    } else {
                        continuation.resume(throwing: error ?? URLError(.badServerResponse))
                    }
                }
                box.task = task
                task.resume()
            }
        } onCancel: {
            box.task?.cancel()
        }
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        if let response = challenge.failureResponse as? HTTPURLResponse {
            challenged.withLock { $0[task.taskIdentifier] = response }
        }
        completionHandler(.cancelAuthenticationChallenge, nil)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        var redirected = request
        let from = task.originalRequest?.url
        if from?.host != request.url?.host || from?.port != request.url?.port {
            redirected.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(redirected)
    }
}

/// Holds the download task for the cancellation handler.
private final class DownloadBox: @unchecked Sendable {
    private let lock = Lock()
    private var stored: URLSessionDownloadTask?
    var task: URLSessionDownloadTask? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// Holds the data task for the cancellation handler.
private final class TaskBox: @unchecked Sendable {
    private let lock = Lock()
    private var stored: URLSessionDataTask?
    var task: URLSessionDataTask? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
