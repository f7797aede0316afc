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
        try await perform(whenChallenged: Data()) { done in
            session.dataTask(with: request) { data, response, error in
                done(response, error) { data ?? Data() }
            }
        }
    }

    /// Downloads `request` into a new file in `directory` (memory stays flat
    /// whatever the size); a 401 comes back as a response with no file.
    func download(
        _ request: URLRequest, in session: URLSession, to directory: URL
    ) async throws -> (URL?, HTTPURLResponse) {
        try await perform(whenChallenged: nil) { done in
            session.downloadTask(with: request) { location, response, error in
                done(response, error) {
                    guard let location else { throw URLError(.cannotOpenFile) }
                    // The system deletes `location` when this returns: move it.
                    let destination = directory.appendingPathComponent("ocirpc-blob-\(UUID().uuidString)")
                    try FileManager.default.moveItem(at: location, to: destination)
                    return destination
                }
            }
        }
    }

    /// Runs the task `makeTask` builds, with cancellation, and turns a
    /// challenged 401 into an ordinary response carrying `challengedPayload`.
    /// `makeTask` gets the callback its completion handler must call with
    /// the response, the error and how to take the payload.
    private func perform<Payload: Sendable>(
        whenChallenged challengedPayload: Payload,
        _ makeTask: (@escaping @Sendable (URLResponse?, (any Error)?, () throws -> Payload) -> Void) -> URLSessionTask
    ) async throws -> (Payload, HTTPURLResponse) {
        let box = TaskBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(Payload, HTTPURLResponse), any Error>) in
                let task = makeTask { [self] response, error, payload in
                    let id = box.task?.taskIdentifier ?? -1
                    let kept = challenged.withLock { $0.removeValue(forKey: id) }
                    if let http = response as? HTTPURLResponse, error == nil {
                        continuation.resume(with: Result { (try payload(), http) })
                    } else if let kept {
                        continuation.resume(returning: (challengedPayload, kept))
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

/// Holds the task for the cancellation handler.
private final class TaskBox: @unchecked Sendable {
    private let lock = Lock()
    private var stored: URLSessionTask?
    var task: URLSessionTask? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
