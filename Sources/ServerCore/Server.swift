import Reasons
import Dispatch
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
    /// How long SIGTERM waits for in-flight requests before cancelling them.
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
        let signalSources = handleSignals ? installSignalHandlers() : []
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
                waitForDrain(timeout: nil)
                lifecycle.finish(0)
            })
        guard reading else {
            for source in signalSources { source.cancel() }
            return threadShortage()
        }
        let code = lifecycle.waitUntilFinished()
        for source in signalSources { source.cancel() }
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
            logger.warn(
                "grace period over; cancelling in-flight requests", [("inFlight", String(dispatcher.inFlightCount))])
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
                guard lifecycle.stopReading() else { return }
                logger.info("signal received; draining in-flight requests", [("signal", String(number))])
                dispatcher.beginShutdown()
                // A thread of its own for the blocking wait: the global
                // queues are the threads the calls it waits for run on.
                startThreadOrRunHere { [self] in
                    waitForDrain(timeout: Self.terminationGracePeriod)
                    lifecycle.finish(0)
                }
            }
            source.resume()
            sources.append(source)
        }
        return sources
    }
}
