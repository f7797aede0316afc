import CCurl
import Foundation
import Locking

/// The HTTP engine: one libcurl multi handle, driven by one OS thread, runs
/// every transfer of the process. Connections are kept alive and reused
/// across requests (up to `maxConnectionsPerHost` per host, further requests
/// wait for one); redirects are followed, and libcurl drops `Authorization`
/// when a redirect leaves the host or port. Only the engine's thread touches
/// libcurl; callers hand it transfers and await their completion.
///
/// The engine is also a task executor: tasks that prefer it (the batch's
/// workers) run on its thread between network events, so a finished
/// transfer resumes its caller, and the caller's next request starts,
/// without waking another thread.
final class CurlEngine: TaskExecutor, @unchecked Sendable {
    /// What an engine is set up with; engines are shared by equal settings.
    struct Settings: Hashable, Sendable {
        /// Seconds without progress (connecting, waiting or receiving) before
        /// a transfer fails with a timeout.
        var timeout: Double = 30
        var maxConnectionsPerHost = 8
        /// A PEM bundle of trusted CAs instead of the system's.
        var caFile: String?
        /// A directory of hashed CA certificates instead of the system's.
        var caDirectory: String?
    }

    private static let engines = Locked([Settings: CurlEngine]())

    /// The engine for `settings`, started on first use (a server has one).
    static func shared(_ settings: Settings) -> CurlEngine {
        engines.withLock { engines in
            if let engine = engines[settings] { return engine }
            let engine = CurlEngine(settings)
            engines[settings] = engine
            return engine
        }
    }

    private let settings: Settings
    private let multi: UnsafeMutableRawPointer
    private let lock = Lock()
    private var incoming: [CurlTransfer] = []
    private var cancelling: [CurlTransfer] = []
    /// Jobs of tasks that prefer this executor, run on the engine's thread.
    private var jobs: [UnownedJob] = []
    /// The engine's thread, once it runs (guarded by `lock`).
    private var thread: pthread_t?
    // Touched by the engine's thread only:
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private var spareHandles: [UnsafeMutableRawPointer] = []

    private init(_ settings: Settings) {
        _ = Self.globalInit
        self.settings = settings
        multi = curl_multi_init()
        ocirpc_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, settings.maxConnectionsPerHost)
        // Idle connections kept for reuse: enough for several hosts.
        ocirpc_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(64, 4 * settings.maxConnectionsPerHost))
        startThread { [self] in run() }
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Performs `request`, its body going to `sink`; throws `CurlFailure`
    /// when no response came (or the task was cancelled).
    func perform(_ request: HTTPRequest, into sink: BodySink) async throws(CurlFailure) -> CurlResult {
        let transfer = CurlTransfer(request: request, sink: sink)
        let result: Result<CurlResult, CurlFailure> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                submit(transfer, continuation)
            }
        } onCancel: {
            cancel(transfer)
        }
        return try result.get()
    }

    private func submit(_ transfer: CurlTransfer, _ continuation: CheckedContinuation<Result<CurlResult, CurlFailure>, Never>) {
        let cancelled: Bool = lock.withLock {
            transfer.continuation = continuation
            if transfer.cancelRequested { return true }
            incoming.append(transfer)
            return false
        }
        if cancelled {
            transfer.complete(.failure(.cancelled))
        } else {
            wakeUnlessOnEngineThread()
        }
    }

    private func cancel(_ transfer: CurlTransfer) {
        lock.withLock {
            transfer.cancelRequested = true
            cancelling.append(transfer)
        }
        wakeUnlessOnEngineThread()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.withLock { jobs.append(job) }
        wakeUnlessOnEngineThread()
    }

    /// The engine's thread looks for new work before it waits, so only
    /// other threads need to wake it.
    private func wakeUnlessOnEngineThread() {
        let onEngineThread = lock.withLock { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
        if !onEngineThread { curl_multi_wakeup(multi) }
    }

    // MARK: The engine's thread

    private func run() {
        lock.withLock { thread = pthread_self() }
        var running: Int32 = 0
        var lastTimeoutCheck = CurlTransfer.now()
        let executor = asUnownedTaskExecutor()
        while true {
            let ready = lock.withLock {
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            for job in ready { job.runSynchronously(on: executor) }
            let (added, cancelled) = lock.withLock {
                defer { incoming.removeAll(keepingCapacity: true); cancelling.removeAll(keepingCapacity: true) }
                return (incoming, cancelling)
            }
            for transfer in added { start(transfer) }
            for transfer in cancelled {
                if let handle = transfer.handle, active[handle] === transfer { finish(transfer, .failure(.cancelled)) }
            }
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                      let transfer = active[handle] else { continue }
                finish(transfer, transfer.outcome(message.pointee.data.result))
            }
            let now = CurlTransfer.now()
            if !active.isEmpty, now - lastTimeoutCheck > 50_000_000 {
                lastTimeoutCheck = now
                let limit = UInt64(settings.timeout * 1e9)
                for transfer in active.values where transfer.isIdle(since: now, limit: limit) {
                    finish(transfer, .failure(CurlFailure(.timeout, "no progress for \(settings.timeout) s")))
                }
            }
            // Work that arrived meanwhile from this thread is taken at once.
            let pending = lock.withLock { !jobs.isEmpty || !incoming.isEmpty || !cancelling.isEmpty }
            curl_multi_poll(multi, nil, 0, pending ? 0 : active.isEmpty ? 1000 : 100, nil)
        }
    }

    private func start(_ transfer: CurlTransfer) {
        if transfer.cancelRequested { return transfer.complete(.failure(.cancelled)) }
        guard let handle = spareHandles.popLast() ?? curl_easy_init() else {
            return transfer.complete(.failure(CurlFailure(.connection, "out of memory")))
        }
        transfer.configure(handle, settings: settings)
        active[handle] = transfer
        curl_multi_add_handle(multi, handle)
    }

    private func finish(_ transfer: CurlTransfer, _ outcome: Result<CurlResult, CurlFailure>) {
        guard let handle = transfer.handle else { return }
        curl_multi_remove_handle(multi, handle)
        active[handle] = nil
        transfer.release()
        recycle(handle)
        transfer.complete(outcome)
    }

    private func recycle(_ handle: UnsafeMutableRawPointer) {
        curl_easy_reset(handle)
        if spareHandles.count < 64 { spareHandles.append(handle) } else { curl_easy_cleanup(handle) }
    }
}

/// Where a response body goes.
enum BodySink: Sendable {
    /// Held in memory, cut at `limit + 1` bytes (so callers can tell it was longer).
    case memory(limit: Int)
    /// A success's body streamed into a new file in `directory`, hashed
    /// with `algorithm` on the way; other answers' bodies (registry errors)
    /// are held in memory, cut at 1 MiB.
    case file(directory: URL, hashing: Digest.Algorithm)
}

/// A completed transfer: the response, and for a `.file` sink the file
/// written with the digest and size of its bytes.
struct CurlResult: Sendable {
    let response: HTTPResponse
    let file: DownloadedFile?
}

/// A response body streamed to disk, hashed as it was written.
public struct DownloadedFile: Sendable {
    public let url: URL
    public let digest: Digest
    public let size: Int
}

/// Why a transfer ended without a response.
struct CurlFailure: Error, Sendable {
    enum Kind: Sendable { case timeout, tls, connection, cancelled, localFile }
    let kind: Kind
    let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static let cancelled = CurlFailure(.cancelled, "cancelled")
}
