import Reasons
import Dispatch
import Framing
import Glibc
import JSON
import Locking
import Logging
import RPCDispatch
import Synchronization

extension OutputWriter: MessageSink {}

/// One server session over a pair of file descriptors: reads requests on
/// `input` (a dedicated thread), dispatches them as tasks, writes responses
/// through one coalescing writer on `output`, and owns the lifecycle
/// (`shutdown`, `exit`, end of input, SIGTERM, a closed stdout).
public final class Server: Sendable {
    /// Output queued beyond this pauses reading (backpressure on clients
    /// that do not read their responses).
    public static let outputHighWater = 16 << 20
    /// How long SIGTERM waits for in-flight requests before cancelling them.
    public static let terminationGracePeriod = 10.0

    private let configuration: ServerConfiguration
    private let logger: Logger
    private let input: Int32
    private let writer: OutputWriter
    private let dispatcher: Dispatcher
    private let exitCode = Locked<Int32?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    private let shutdownRequested = Atomic<Bool>(false)
    private let stopReading = Atomic<Bool>(false)
    /// Every method name a client may call, including the dispatcher's own.
    public let servedMethods: [String]

    public init(
        configuration: ServerConfiguration, logger: Logger, extensions: [ServerExtension],
        input: Int32 = 0, output: Int32 = 1
    ) {
        self.configuration = configuration
        self.logger = logger
        self.input = input
        let finishBox = FinishBox()
        let writer = OutputWriter(fd: output) {
            logger.info("stdout closed by the client; exiting")
            finishBox.finish?(0)
        }
        self.writer = writer

        let core = CoreMethods(configuration: configuration, extensions: extensions)
        var registry = MethodRegistry()
        for ext in extensions { registry.register(ext.methods) }
        registry.register(core.specs)
        self.servedMethods = (registry.names + ["$/cancelRequest"]).sorted()
        self.dispatcher = Dispatcher(registry: registry, sink: writer) { method, error in
            logger.error("unexpected failure in a handler", [("method", method), ("error", "\(type(of: error))")])
        }
        core.attach(server: self, methodNames: registry.names)
        finishBox.finish = { [unowned self] code in self.finish(code) }
    }

    var dispatcherForCore: Dispatcher { dispatcher }

    /// Serves until end of input, `exit`, SIGTERM (when `handleSignals`) or a
    /// closed output, and returns the process exit status.
    public func run(handleSignals: Bool = true) -> Int32 {
        let signalSources = handleSignals ? installSignalHandlers() : []
        let reader = InputReader(fd: input, maxMessageBytes: configuration.maxMessageBytes)
        let maxMessageBytes = configuration.maxMessageBytes
        reader.start(
            beforeRead: { [self] in
                writer.waitUntilPending(below: Self.outputHighWater)
                dispatcher.waitForCapacity()
                return !stopReading.load(ordering: .relaxed)
            },
            onEvent: { [self] event in
                switch event {
                case .mode(let mode):
                    writer.setMode(mode)
                    logger.debug("framing detected", [("framing", mode.rawValue)])
                case .message(let bytes):
                    dispatcher.receive(bytes)
                case .tooLarge(let size):
                    logger.warn("message over the size limit skipped", [("bytes", String(size))])
                    dispatcher.reject(RPCError(
                        .invalidRequest, reason: .messageTooLarge,
                        message: "Message of \(size)+ bytes exceeds --max-message-bytes (\(maxMessageBytes))"))
                case .invalidFrame(let reason):
                    dispatcher.reject(RPCError(.parseError, reason: .invalidFrame, message: "Invalid frame: \(reason)"))
                }
            },
            onEnd: { [self] in
                guard !stopReading.load(ordering: .relaxed) else { return }
                logger.debug("end of input; draining in-flight requests")
                waitForDrain(timeout: nil)
                finish(0)
            })
        finished.wait()
        for source in signalSources { source.cancel() }
        writer.close()
        return exitCode.withLock { $0 } ?? 0
    }

    /// Ends the session with `code` once: flushes what was written so far.
    func finish(_ code: Int32) {
        let first = exitCode.withLock { current -> Bool in
            guard current == nil else { return false }
            current = code
            return true
        }
        guard first else { return }
        writer.flush()
        finished.signal()
    }

    /// `shutdown` received: refuse every later request.
    func markShuttingDown() {
        shutdownRequested.store(true, ordering: .relaxed)
        dispatcher.beginShutdown()
    }

    /// `shutdown` handled: wait for the other requests in flight.
    func beginShutdown() async {
        await dispatcher.waitUntilIdle(leaving: 1)
    }

    /// `exit`: 0 after `shutdown`, else 1.
    func exitRequested() {
        finish(shutdownRequested.load(ordering: .relaxed) ? 0 : 1)
    }

    /// Blocks the calling OS thread until nothing is in flight; with a
    /// timeout, cancels what is left when it expires and waits briefly for
    /// their -32800 answers.
    private func waitForDrain(timeout: Double?) {
        let drained = DispatchSemaphore(value: 0)
        let dispatcher = self.dispatcher
        Task.detached {
            await dispatcher.waitUntilIdle()
            drained.signal()
        }
        guard let timeout else {
            drained.wait()
            return
        }
        if drained.wait(timeout: .now() + timeout) == .timedOut {
            logger.warn("grace period over; cancelling in-flight requests", [("inFlight", String(dispatcher.inFlightCount))])
            dispatcher.cancelAll()
            _ = drained.wait(timeout: .now() + 2)
        }
    }

    private func installSignalHandlers() -> [any DispatchSourceSignal] {
        signal(SIGPIPE, SIG_IGN)
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                guard !stopReading.exchange(true, ordering: .relaxed) else { return }
                logger.info("signal received; draining in-flight requests", [("signal", String(number))])
                dispatcher.beginShutdown()
                DispatchQueue.global().async { [self] in
                    waitForDrain(timeout: Self.terminationGracePeriod)
                    finish(0)
                }
            }
            source.resume()
            sources.append(source)
        }
        return sources
    }
}

/// Lets the writer's broken-pipe callback reach the server it is built for.
private final class FinishBox: @unchecked Sendable {
    var finish: (@Sendable (Int32) -> Void)?
}
