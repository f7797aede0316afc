import CCurl
import Dispatch
import FoundationEssentials
import Glibc
import Locking
import Memory

/// The HTTP engine: one libcurl multi handle, driven by one OS thread, runs
/// every transfer of the process. The thread waits in `epoll` on the sockets
/// libcurl names (its socket interface), so each network event costs libcurl
/// the work of that one socket. Connections are kept alive and reused
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
        /// Addresses counted as public whatever their range
        /// (`CurlTransfer.maySend`): for tests, whose servers are all on
        /// loopback. Empty in the server.
        var publicAddresses: Set<String> = []
    }

    private static let engines = Locked([Settings: CurlEngine]())

    /// A transfer slower than this for `timeout` seconds fails as a timeout.
    static let minimumBytesPerSecond = 1024
    /// Response headers beyond this (all of a transfer's responses together)
    /// fail the transfer.
    static let maxHeaderBytes = 256 << 10

    /// The engine for `settings`, started on first use (a server has one).
    /// libcurl is loaded then; when it cannot be, there is no engine. When
    /// its thread cannot start there is none yet (`threadLimit`), and the
    /// next call tries again.
    static func shared(_ settings: Settings) throws(CurlFailure) -> CurlEngine {
        if let error = ocirpc_curl_load() { throw CurlFailure(.library, String(cString: error)) }
        let engine: CurlEngine? = engines.withLock { engines in
            if let engine = engines[settings] { return engine }
            guard let engine = CurlEngine(settings) else { return nil }
            engines[settings] = engine
            return engine
        }
        guard let engine else { throw CurlFailure(.threadLimit, threadShortageExplanation) }
        return engine
    }

    private let settings: Settings
    private let multi: UnsafeMutableRawPointer
    /// What the engine's thread waits on: libcurl's sockets and `wakeup`.
    private let epoll: Int32
    /// Written to wake the engine's thread for new work.
    private let wakeup: Int32
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
    /// Sockets registered with `epoll`.
    private var watched: Set<Int32> = []
    /// When libcurl wants to be called for its timers (uptime ns), if it does.
    private var timerDeadline: UInt64?

    /// Nil when the engine's thread cannot start: it is not run here
    /// instead, where it would never return (and every caller would wait
    /// for the lock `shared` holds).
    private init?(_ settings: Settings) {
        self.settings = settings
        multi = ocirpc_multi_init()
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeup = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(fd: wakeup))
        epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event)
        ocirpc_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, settings.maxConnectionsPerHost)
        // Idle connections kept for reuse: enough for several hosts.
        ocirpc_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(64, 4 * settings.maxConnectionsPerHost))
        // Engines live as long as the process, so libcurl may hold them unretained.
        let context = Unmanaged.passUnretained(self).toOpaque()
        ocirpc_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, context)
        ocirpc_multi_setopt_socket_callback(multi) { _, socket, what, context, _ in
            Unmanaged<CurlEngine>.fromOpaque(context!).takeUnretainedValue().watch(socket, what)
            return 0
        }
        ocirpc_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, context)
        ocirpc_multi_setopt_timer_callback(multi) { _, milliseconds, context in
            let engine = Unmanaged<CurlEngine>.fromOpaque(context!).takeUnretainedValue()
            engine.timerDeadline = milliseconds < 0 ? nil : CurlTransfer.now() + UInt64(milliseconds) * 1_000_000
            return 0
        }
        guard startThreadIfPossible({ [self] in run() }) else {
            ocirpc_multi_cleanup(multi)
            close(epoll)
            close(wakeup)
            return nil
        }
    }

    /// Performs `request`, its body going to `sink`; throws `CurlFailure`
    /// when no response came (or the task was cancelled).
    /// `timeLimit` (seconds) bounds the whole transfer, connecting included.
    /// A body held in memory (any sink's) is taken from `memory`, when
    /// there is one, as it arrives, once it is over
    /// `MemoryBudget.uncountedValueBytes`: past the budget the transfer
    /// fails (`memoryLimit`). The response holds what it took
    /// (`HTTPResponse.bodyCharge`). A body written to a file is taken from
    /// `downloads` the same way, from its first byte (`downloadLimit`;
    /// `DownloadedFile.charge`).
    nonisolated(nonsending) func perform(
        _ request: HTTPRequest, into sink: BodySink, timeLimit: Double, memory: MemoryBudget? = nil,
        downloads: DownloadBudget? = nil, resuming partial: PartialDownload? = nil
    ) async throws(CurlFailure) -> CurlResult {
        let transfer = CurlTransfer(
            request: request, sink: sink, timeLimit: timeLimit, memory: memory, downloads: downloads,
            resuming: partial)
        let result: Result<CurlResult, CurlFailure> = await withTaskCancellationHandler {
            // Unchecked: the engine resumes each transfer exactly once
            // (`complete`), and the checked kind costs an allocation a request.
            await withUnsafeContinuation { continuation in
                submit(transfer, continuation)
            }
        } onCancel: {
            cancel(transfer)
        }
        SanitizerHandOff.acquire(transfer)
        return try result.get()
    }

    private func submit(
        _ transfer: CurlTransfer, _ continuation: UnsafeContinuation<Result<CurlResult, CurlFailure>, Never>
    ) {
        let (cancelled, wake): (Bool, Bool) = lock.withLock {
            transfer.continuation = continuation
            if transfer.cancelRequested { return (true, false) }
            incoming.append(transfer)
            return (false, !onEngineThread)
        }
        if cancelled {
            transfer.complete(.failure(.cancelled))
        } else if wake {
            wakeEngineThread()
        }
    }

    private func cancel(_ transfer: CurlTransfer) {
        let wake = lock.withLock {
            transfer.cancelRequested = true
            cancelling.append(transfer)
            return !onEngineThread
        }
        if wake { wakeEngineThread() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wake = lock.withLock {
            jobs.append(job)
            return !onEngineThread
        }
        if wake { wakeEngineThread() }
    }

    private func wakeEngineThread() {
        var one: UInt64 = 1
        _ = write(wakeup, &one, 8)
    }

    /// Whether the caller is the engine's thread (call with `lock` held). It
    /// looks for new work before it waits, so only other threads wake it.
    private var onEngineThread: Bool {
        thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
    }

    // MARK: The engine's thread

    private func run() {
        lock.withLock { thread = pthread_self() }
        var running: Int32 = 0
        var lastTimeoutCheck = CurlTransfer.now()
        let executor = asUnownedTaskExecutor()
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let ready = lock.withLock {
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            for job in ready { job.runSynchronously(on: executor) }
            // Whether each new transfer was cancelled is read here, under
            // the lock that guards it: read in `start`, a cancellation
            // written at that moment raced with it (the thread sanitizer
            // saw it). One cancelled later is in the next `cancelling`.
            let (added, cancelled) = lock.withLock {
                defer { incoming.removeAll(keepingCapacity: true); cancelling.removeAll(keepingCapacity: true) }
                return (incoming.map { ($0, $0.cancelRequested) }, cancelling)
            }
            for (transfer, cancelRequested) in added { start(transfer, cancelRequested: cancelRequested) }
            for transfer in cancelled {
                if let handle = transfer.handle, active[handle] === transfer { finish(transfer, .failure(.cancelled)) }
            }
            // libcurl's timers: new transfers start here, and connect timeouts fire.
            if let deadline = timerDeadline, CurlTransfer.now() >= deadline {
                timerDeadline = nil
                ocirpc_multi_socket_action(multi, CURL_SOCKET_BAD, 0, &running)
            }
            finishCompleted()
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
            var wait: UInt64 = pending ? 0 : active.isEmpty ? 1000 : 100
            if let deadline = timerDeadline {
                let now = CurlTransfer.now()
                wait = min(wait, deadline > now ? (deadline - now + 999_999) / 1_000_000 : 0)
            }
            let count = epoll_wait(epoll, &events, Int32(events.count), Int32(wait))
            for event in events.prefix(max(0, Int(count))) {
                let socket = event.data.fd
                if socket == wakeup {
                    var value: UInt64 = 0
                    _ = read(wakeup, &value, 8)
                    continue
                }
                var mask: Int32 = 0
                if event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue) != 0 { mask |= CURL_CSELECT_IN }
                if event.events & EPOLLOUT.rawValue != 0 { mask |= CURL_CSELECT_OUT }
                if event.events & EPOLLERR.rawValue != 0 { mask |= CURL_CSELECT_ERR }
                ocirpc_multi_socket_action(multi, socket, mask, &running)
            }
            finishCompleted()
        }
    }

    /// Completes the transfers libcurl has finished.
    private func finishCompleted() {
        var left: Int32 = 0
        while let message = ocirpc_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                let transfer = active[handle]
            else { continue }
            finish(transfer, transfer.outcome(message.pointee.data.result))
        }
    }

    /// libcurl's socket callback: which events to wait for on `socket`.
    private func watch(_ socket: Int32, _ what: Int32) {
        if what == CURL_POLL_REMOVE {
            if watched.remove(socket) != nil { epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil) }
            return
        }
        var events: UInt32 = 0
        if what & CURL_POLL_IN != 0 { events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { events |= EPOLLOUT.rawValue }
        var event = epoll_event(events: events, data: epoll_data_t(fd: socket))
        // A socket closed without a REMOVE left epoll by itself: add it anew.
        if watched.insert(socket).inserted || epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event) != 0 {
            if epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) != 0 && errno == EEXIST {
                epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event)
            }
        }
    }

    /// Starts `transfer`, unless it was cancelled (`cancelRequested`, read
    /// under the lock when it was taken from `incoming`).
    private func start(_ transfer: CurlTransfer, cancelRequested: Bool) {
        if cancelRequested { return transfer.complete(.failure(.cancelled)) }
        if !settings.publicAddresses.isEmpty { transfer.publicAddresses = settings.publicAddresses }
        guard let handle = spareHandles.popLast() ?? newHandle() else {
            return transfer.complete(.failure(CurlFailure(.connection, "out of memory")))
        }
        if let failure = transfer.configure(handle) {
            recycle(handle, reset: false)
            return transfer.complete(.failure(failure))
        }
        active[handle] = transfer
        ocirpc_multi_add_handle(multi, handle)
    }

    private func finish(_ transfer: CurlTransfer, _ outcome: consuming Result<CurlResult, CurlFailure>) {
        guard let handle = transfer.handle else { return }
        ocirpc_multi_remove_handle(multi, handle)
        active[handle] = nil
        transfer.release()
        recycle(handle, reset: transfer.needsReset)
        transfer.complete(consume outcome)
    }

    /// A handle with the options every transfer shares.
    private func newHandle() -> UnsafeMutableRawPointer? {
        guard let handle = ocirpc_easy_init() else { return nil }
        CurlTransfer.configureShared(handle, settings: settings)
        return handle
    }

    /// Keeps `handle` for the next transfer: as it is after a plain GET
    /// (the next one sets only what differs per request), reset and set up
    /// anew after anything else.
    private func recycle(_ handle: UnsafeMutableRawPointer, reset: Bool) {
        guard spareHandles.count < 64 else { return ocirpc_easy_cleanup(handle) }
        if reset {
            ocirpc_easy_reset(handle)
            CurlTransfer.configureShared(handle, settings: settings)
        }
        spareHandles.append(handle)
    }
}

/// Where a response body goes.
enum BodySink: Sendable {
    /// Held in memory, cut at `limit + 1` bytes (so callers can tell it was longer).
    case memory(limit: Int)
    /// A success's body streamed into a new file in `directory`, hashed
    /// with `algorithm` on the way; other answers' bodies (registry errors)
    /// are held in memory, cut at 1 MiB. A body longer than `limit` bytes
    /// ends the transfer (`tooLarge`): nothing past it reaches the disk.
    /// `progress` hears of the file and of each part written to it.
    case file(directory: URL, hashing: Digest.Algorithm, limit: Int, progress: DownloadProgress? = nil)
}

/// A completed transfer: the response, and for a `.file` sink the file
/// written with the digest and size of its bytes.
struct CurlResult: Sendable {
    let response: HTTPResponse
    let file: DownloadedFile?
    /// Connections the transfer opened (0 when it reused one).
    var connectionsOpened = 0
}
