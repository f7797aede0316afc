import Reasons
import Framing
import Glibc
import JSON
import Locking
import Logging
import Memory
import RPCDispatch
import Tally

extension OutputWriter: MessageSink {
    /// Room under the same mark at which reading pauses.
    public func waitForRoom() async { await waitForRoom(below: Server.outputHighWater) }
}

/// One server session over a pair of file descriptors: reads requests on
/// `input` (a dedicated thread), dispatches them as tasks, writes responses
/// through one coalescing writer on `output`, and owns the lifecycle
/// (`shutdown`, `exit`, end of input, SIGTERM, a closed stdout).
public final class Server: Sendable {
    /// Output queued beyond this pauses reading (backpressure on clients
    /// that do not read their responses).
    public static let outputHighWater = 16 << 20
    /// How long SIGTERM waits for in-flight requests before cancelling them
    /// (a second signal cancels them at once).
    public static let terminationGracePeriod = 10.0

    private let options: ServerOptions
    private let logger: Logger
    private let input: Int32
    private let lifecycle = Lifecycle()
    private let writer: OutputWriter
    private let dispatcher: Dispatcher
    /// Every method name a client may call, including the dispatcher's own.
    public let servedMethods: [String]

    /// Assembles a session: the writer on `output`, the dispatcher over the
    /// extensions' methods and the core methods, all ending through one
    /// lifecycle.
    /// `memory` is the budget of the calls in flight (by default one of
    /// `options.maxMemoryBytes`): pass the one the extensions take from.
    public init(
        options: ServerOptions, logger: Logger, extensions: [ServerExtension],
        memory: MemoryBudget? = nil, input: Int32 = 0, output: Int32 = 1
    ) {
        self.options = options
        self.logger = logger
        self.input = input
        let lifecycle = self.lifecycle
        let memory = memory ?? MemoryBudget(limit: options.maxMemoryBytes)
        writer = OutputWriter(fd: output, memory: memory) {
            logger.info("stdout closed by the client; exiting")
            lifecycle.finish(0)
        }
        var registry = MethodRegistry()
        for ext in extensions { registry.register(ext.methods) }
        registry.register(
            CoreMethods.specs(
                lifecycle: lifecycle, extensions: extensions,
                methodNames: registry.names + CoreMethods.names))
        servedMethods = (registry.names + ["$/cancelRequest"]).sorted()
        // One debug line per answered request; nothing at all (not even a
        // clock read) at other levels.
        var requestLog: (@Sendable (CompletedCall) -> Void)?
        if logger.isEnabled(.debug) {
            requestLog = { @Sendable call in Server.logRequest(call, logger) }
        }
        dispatcher = Dispatcher(
            registry: registry, sink: writer, memory: memory,
            onCompleted: requestLog,
            onHandlerError: { method, error in
                logger.error("unexpected failure in a handler", [("method", method), ("error", "\(type(of: error))")])
            })
    }

    /// The debug line of one answered request.
    private static func logRequest(_ call: CompletedCall, _ logger: Logger) {
        let (seconds, attoseconds) = call.duration.components
        let milliseconds = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        // The id tells lines apart: a call's line is written after its
        // answer, so the next call's line may come first.
        let fields: [(String, String)] = [
            ("id", call.id?.logText ?? "-"), ("method", call.method), ("subject", call.subject ?? "-"),
            ("outcome", call.failure?.rawValue ?? "ok"),
            ("ms", String((milliseconds * 10).rounded() / 10)), ("cacheHits", String(call.tally.hits)),
            ("cacheMisses", String(call.tally.misses)), ("registryRequests", String(call.tally.registryRequests)),
        ]
        logger.debug("request", fields)
    }

    /// Serves until end of input, `exit`, SIGTERM (when `handleSignals`) or a
    /// closed output, and returns the process exit status.
    public func run(handleSignals: Bool = true) -> Int32 {
        guard writer.isRunning else { return threadShortage() }
        signal(SIGPIPE, SIG_IGN)
        let catchesSignals = handleSignals && TerminationSignals.install()
        if handleSignals && !catchesSignals {
            logger.warn("SIGTERM and SIGINT cannot be caught; they end the server at once")
        }
        let reader = InputReader(fd: input, maxMessageBytes: options.maxMessageBytes)
        let maxMessageBytes = options.maxMessageBytes
        let reading = reader.start(
            beforeRead: { [self] in
                writer.waitUntilPending(below: Self.outputHighWater)
                dispatcher.waitForCapacity()
                return !lifecycle.isReadingStopped
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
                    dispatcher.reject(
                        RPCError(
                            .invalidRequest, reason: .messageTooLarge,
                            message: "Message of \(size)+ bytes exceeds --max-message-bytes (\(maxMessageBytes))"))
                case .invalidFrame(let detail):
                    dispatcher.reject(RPCError(.parseError, reason: .invalidFrame, message: "Invalid frame: \(detail)"))
                }
            },
            onEnd: { [self] in
                guard !lifecycle.isReadingStopped else { return }
                logger.debug("end of input; draining in-flight requests")
                _ = dispatcher.waitUntilIdle(seconds: nil)
                lifecycle.finish(0)
            })
        guard reading else { return threadShortage() }
        let code = catchesSignals ? waitUntilFinishedOrSignalled() : lifecycle.waitUntilFinished()
        writer.flush()
        writer.close()
        return code
    }

    /// The writer's or the reader's thread could not start: said on stderr,
    /// and the exit status of a system the server cannot run on.
    private func threadShortage() -> Int32 {
        logger.error("cannot serve: \(threadShortageExplanation)")
        return 2
    }

    /// Waits on the calling thread (the process's main thread) for the
    /// session to end, and drains it there when a signal comes: nothing on
    /// this path needs a thread to start, so a server that cannot start
    /// one (its limit on tasks shrank while it ran) still ends on SIGTERM.
    private func waitUntilFinishedOrSignalled() -> Int32 {
        lifecycle.onFinish(TerminationSignals.wake)
        while true {
            let number = TerminationSignals.waitForSignalOrWake()
            if let code = lifecycle.code { return code }
            guard let number, lifecycle.stopReading() else { continue }
            logger.info("signal received; draining in-flight requests", [("signal", String(number))])
            dispatcher.beginShutdown()
            drainAfterSignal()
            lifecycle.finish(0)
        }
    }

    /// Waits for the calls in flight for the grace period, or until a
    /// second signal, then cancels what is left and waits briefly for
    /// their -32800 answers. Returns early when the session ends otherwise
    /// (its stdout closed).
    private func drainAfterSignal() {
        let deadline = ContinuousClock.now + .seconds(Self.terminationGracePeriod)
        while !dispatcher.waitUntilIdle(seconds: 0.1), lifecycle.code == nil {
            let why: String
            if TerminationSignals.takeSignal() != nil {
                why = "second signal; cancelling in-flight requests"
            } else if ContinuousClock.now >= deadline {
                why = "grace period over; cancelling in-flight requests"
            } else {
                continue
            }
            logger.warn(why, [("inFlight", String(dispatcher.inFlightCount))])
            dispatcher.cancelAll()
            _ = dispatcher.waitUntilIdle(seconds: 2)
            return
        }
    }
}
