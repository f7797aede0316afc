import Reasons
import CSystem
import JSON
import Locking
import Memory
import Synchronization
import Tally

/// The one place where the transport meets the methods.
///
/// Takes raw messages (in input order, from the reader thread), answers
/// malformed ones at once, and runs each valid call as its own Swift task
/// that writes its response when done, so responses go out in completion
/// order. Handles JSON-RPC batches, notifications, `$/cancelRequest` and the
/// shutting-down state.
public final class Dispatcher: Sendable {
    private let registry: MethodRegistry
    private let sink: any MessageSink
    private let maxDepth: Int
    private let inFlight: InFlightRequests
    private let shuttingDown = Atomic<Bool>(false)
    private let onHandlerError: @Sendable (String, any Error) -> Void
    /// What the calls in flight may hold in memory together.
    public let memory: MemoryBudget

    /// - Parameters:
    ///   - registry: the methods served.
    ///   - sink: where responses and notifications go.
    ///   - maxRunning: calls run at once; later ones wait in a queue.
    ///   - maxQueuedBytes: what waiting calls may hold before reading pauses.
    ///   - memory: what the calls in flight may hold together: their
    ///     answers while written out, and what calls that hold memory
    ///     (`MethodSpec.holdsMemory`) take as they read.
    ///   - onHandlerError: told about handler failures that were not
    ///     `RPCError`s (they are answered as -32603), for logging.
    public init(
        registry: MethodRegistry, sink: any MessageSink, maxDepth: Int = JSONParser.defaultMaxDepth,
        maxRunning: Int = Dispatcher.defaultMaxRunning, maxQueuedBytes: Int = Dispatcher.defaultMaxQueuedBytes,
        maxResponseBytes: Int = Dispatcher.defaultMaxResponseBytes, memory: MemoryBudget = MemoryBudget(),
        onCompleted: (@Sendable (CompletedCall) -> Void)? = nil,
        onHandlerError: @escaping @Sendable (String, any Error) -> Void = { _, _ in }
    ) {
        let notifications = NotificationSender(sink: sink)
        // The calls' contexts name this dispatcher, which does not exist
        // until the queue that runs them does.
        let this = WeakDispatcher()
        self.inFlight = InFlightRequests(maxRunning: maxRunning, maxQueuedBytes: maxQueuedBytes) { call in
            Dispatcher.body(
                call, dispatcher: this, notifications: notifications, maxResponseBytes: maxResponseBytes,
                memory: memory, onCompleted: onCompleted,
                onHandlerError: onHandlerError)
        }
        self.registry = registry
        self.sink = sink
        self.maxDepth = maxDepth
        self.onHandlerError = onHandlerError
        self.memory = memory
        this.set(self)
    }

    /// Sends server-to-client notifications on the same output.
    public var notifications: NotificationSender { NotificationSender(sink: sink) }

    /// Handles one framed message.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        let message: JSONValue
        do {
            message = try JSONParser.parse(bytes, maxDepth: maxDepth)
        } catch {
            sink.send(MessageEncoding.error(id: .null, .parseError(error.description)))
            return
        }
        switch message {
        case .array(let members):
            receiveBatch(members)
        default:
            handle(message, reply: sink.send)
        }
        // A large message's parsed tree is gone now: give its pages back
        // rather than keep them as the process's high-water mark.
        if bytes.count > 1 << 20 { ocirpc_release_free_memory() }
    }

    /// Answers a message that could not even be framed (too large, bad
    /// header) with `error` and id null.
    public func reject(_ error: RPCError) {
        sink.send(MessageEncoding.error(id: .null, error))
    }

    /// From now on, requests are refused with `-32600 shutting_down`.
    public func beginShutdown() {
        shuttingDown.store(true, ordering: .relaxed)
    }

    public var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

    /// Requests and notifications being handled.
    public var inFlightCount: Int { inFlight.count }

    /// Requests received so far, by method.
    public var requestsByMethod: [String: Int] { inFlight.requestsByMethod }

    /// Returns once at most `leaving` calls are still in flight.
    public func waitUntilIdle(leaving: Int = 0) async {
        await inFlight.waitUntilCount(atMost: leaving)
    }

    /// Blocks the calling OS thread (never a task's) until nothing is in
    /// flight, for at most `seconds` (for ever when nil); false when the
    /// time ran out.
    public func waitUntilIdle(seconds: Double?) -> Bool {
        inFlight.waitUntilCount(atMost: 0, seconds: seconds)
    }

    /// Calls run at once by default; later ones wait their turn.
    public static let defaultMaxRunning = 512
    /// Bytes the waiting calls may hold by default before reading pauses.
    public static let defaultMaxQueuedBytes = 128 << 20
    /// A result whose message is larger is answered `-32005 response_too_large`.
    public static let defaultMaxResponseBytes = 512 << 20
    /// Answers this small are never refused for memory: the error that
    /// would replace one costs about as much to write, and at most
    /// `defaultMaxRunning` calls run at once. (A full budget, e.g. of
    /// output the client has not read, must not fail a batch's last `{}`.)
    public static let unrefusedAnswerBytes = 64 << 10

    /// Blocks the reader thread while waiting calls fill their queue, so a
    /// client flooding requests cannot grow memory without bound. Until
    /// then reading goes on, and cancellations and lifecycle messages are
    /// acted on at once.
    public func waitForCapacity() {
        inFlight.waitForCapacity()
    }

    /// Calls waiting for a turn.
    public var queuedCount: Int { inFlight.queued.calls }

    /// Cancels every call in flight (each is answered -32800).
    public func cancelAll() { inFlight.cancelAll() }

    // MARK: - Messages

    private func receiveBatch(_ members: [JSONValue]) {
        guard !members.isEmpty else {
            sink.send(MessageEncoding.error(id: .null, .invalidRequest(reason: .notARequest, "Empty batch")))
            return
        }
        let expected = members.filter { Self.expectsResponse($0) }.count
        let batch = expected > 0 ? BatchReply(expected: expected, sink: sink) : nil
        let reply: @Sendable ([UInt8]) -> Void = { batch?.add($0) }
        for member in members { handle(member, reply: reply) }
    }

    /// Whether a batch member will be answered: anything but a well-formed
    /// notification (an object with a string method and no id).
    private static func expectsResponse(_ member: JSONValue) -> Bool {
        guard case .object(let object) = member,
            object["jsonrpc"]?.stringValue == "2.0",
            object["method"]?.stringValue != nil,
            object["id"] == nil
        else { return true }
        switch object["params"] {
        case nil, .array?, .object?: return false
        default: return true
        }
    }

    private func handle(_ message: JSONValue, reply: @escaping @Sendable ([UInt8]) -> Void) {
        guard case .object(let object) = message else {
            reply(
                MessageEncoding.error(id: .null, .invalidRequest(reason: .notARequest, "A request must be an object")))
            return
        }
        let rawID = object["id"]
        let id = rawID.flatMap(RequestID.init)
        func fail(_ error: RPCError) {
            reply(MessageEncoding.error(id: id ?? .null, error))
        }
        guard object["jsonrpc"]?.stringValue == "2.0" else {
            return fail(.invalidRequest(reason: .notARequest, "\"jsonrpc\" must be \"2.0\""))
        }
        guard let method = object["method"]?.stringValue else {
            return fail(.invalidRequest(reason: .notARequest, "\"method\" must be a string"))
        }
        if rawID != nil && id == nil {
            return fail(.invalidRequest(reason: .notARequest, "\"id\" must be a string, a number or null"))
        }
        let rawParams = object["params"]
        switch rawParams {
        case nil, .array?, .object?: break
        default: return fail(.invalidRequest(reason: .notARequest, "\"params\" must be an array or an object"))
        }
        let isNotification = rawID == nil

        if method == "$/cancelRequest" {
            if let target = rawParams?["id"].flatMap(RequestID.init)
                ?? rawParams?.arrayValue?.first.flatMap(RequestID.init)
            {
                inFlight.cancel(id: target)
            }
            if let id { reply(MessageEncoding.result(id: id, .null)) }
            return
        }
        if isNotification {
            guard let spec = registry.lookup(method), let params = try? spec.bind(rawParams) else { return }
            if isShuttingDown && method != "exit" { return }
            spec.onReceive?(self)
            run(spec, params: params, id: nil, reply: nil)
            return
        }
        let requestID = id ?? .null
        if isShuttingDown {
            return fail(.invalidRequest(reason: .shuttingDown, "The server is shutting down"))
        }
        guard let spec = registry.lookup(method) else {
            return fail(.methodNotFound(method))
        }
        let params: Params
        do {
            params = try spec.bind(rawParams)
        } catch {
            return fail(error)
        }
        spec.onReceive?(self)
        run(spec, params: params, id: requestID, reply: reply)
    }

    private func run(
        _ spec: MethodSpec, params: Params, id: RequestID?,
        reply: (@Sendable ([UInt8]) -> Void)?
    ) {
        inFlight.start(PendingCall(spec: spec, params: params, id: id, reply: reply))
    }

    /// The task body that runs `call` and answers it.
    private static func body(
        _ call: PendingCall, dispatcher: WeakDispatcher, notifications: NotificationSender, maxResponseBytes: Int,
        memory: MemoryBudget, onCompleted: (@Sendable (CompletedCall) -> Void)?,
        onHandlerError: @escaping @Sendable (String, any Error) -> Void
    ) -> @Sendable () async -> Void {
        let spec = call.spec, id = call.id, reply = call.reply
        return {
            // Calls run only while their dispatcher exists.
            guard let dispatcher = dispatcher.value else { return }
            let started = onCompleted == nil ? nil : ContinuousClock.now
            let tally = onCompleted == nil ? nil : RequestTally()
            var failure: ErrorReason?
            defer {
                if let onCompleted, let started, let tally {
                    onCompleted(
                        CompletedCall(call, failure: failure, duration: ContinuousClock.now - started, tally: tally))
                }
            }
            let context = RequestContext(
                id: id, method: spec.name, notifications: notifications, dispatcher: dispatcher)
            // What the call reads whole stays taken until its answer is
            // with the writer: the answer holds it.
            let share = spec.holdsMemory ? MemoryShare(of: memory) : nil
            defer { withExtendedLifetime(share) {} }
            let response: [UInt8]
            do {
                // Each bound only when it is needed: no task-local binding
                // otherwise.
                @Sendable func handle() async throws -> JSONValue {
                    guard let tally else { return try await spec.handler(call.params, context) }
                    return try await RequestTally.$current.withValue(tally) {
                        try await spec.handler(call.params, context)
                    }
                }
                let result =
                    if let share {
                        try await MemoryShare.$current.withValue(share) { try await handle() }
                    } else {
                        try await handle()
                    }
                guard let id, let reply else { return }
                if Task.isCancelled { failure = .cancelled }
                func refuse(_ asked: Int) {
                    failure = .memoryLimit
                    reply(
                        MessageEncoding.error(
                            id: id, .memoryLimit(MemoryLimitExceeded(limit: memory.limit, asked: asked))))
                }
                // Writing an answer holds it twice over (the writer's
                // buffer, then the message) before it can be counted: taken
                // first, as much as the answer holds.
                let footprint = Task.isCancelled ? 0 : 2 * result.memoryFootprint
                let writing = footprint > Self.unrefusedAnswerBytes ? footprint : 0
                guard memory.take(writing) else { return refuse(writing) }
                defer { memory.giveBack(writing) }
                response =
                    Task.isCancelled
                    ? MessageEncoding.error(id: id, .cancelled)
                    : MessageEncoding.result(id: id, result)
                guard response.count <= maxResponseBytes else {
                    failure = .responseTooLarge
                    reply(
                        MessageEncoding.error(
                            id: id,
                            RPCError(
                                .limitExceeded, reason: .responseTooLarge,
                                message: "the answer to \(spec.name) is over \(maxResponseBytes) bytes")))
                    return
                }
                // Taken (unless it already was) while it goes to the writer,
                // which counts it until it is written; what the call read
                // stays taken with it (its share goes when this task ends).
                let counted = writing == 0 && response.count > Self.unrefusedAnswerBytes ? response.count : 0
                guard memory.take(counted) else { return refuse(counted) }
                reply(response)
                memory.giveBack(counted)
            } catch {
                guard let id, let reply else { return }
                let rpcError: RPCError
                if Task.isCancelled || error is CancellationError {
                    rpcError = .cancelled
                } else if let error = error as? RPCError {
                    rpcError = error
                } else if let error = error as? MemoryLimitExceeded {
                    rpcError = .memoryLimit(error)
                } else {
                    onHandlerError(spec.name, error)
                    rpcError = .internalError("Internal error in \(spec.name)")
                }
                failure = rpcError.reason
                reply(MessageEncoding.error(id: id, rpcError))
            }
        }
    }
}

/// A call answered, as the request log tells it: method, what it was
/// about, how it ended and how long it took.
public struct CompletedCall: Sendable {
    /// The request's id; nil for a notification.
    public let id: RequestID?
    public let method: String
    /// The `ref` asked about, or `N refs` for a batch; nil otherwise.
    public let subject: String?
    /// Nil when it succeeded.
    public let failure: ErrorReason?
    public let duration: Duration
    /// Cache hits and misses and registry requests made while it ran.
    public let tally: RequestTally

    init(_ call: PendingCall, failure: ErrorReason?, duration: Duration, tally: RequestTally) {
        self.tally = tally
        id = call.id
        method = call.spec.name
        if let ref = call.params["ref"]?.stringValue {
            subject = ref
        } else if let refs = call.params["refs"]?.arrayValue {
            subject = "\(refs.count) refs"
        } else {
            subject = nil
        }
        self.failure = failure
        self.duration = duration
    }
}

/// A call taken by the dispatcher: its method, bound params, id and where
/// its answer goes.
struct PendingCall: Sendable {
    let spec: MethodSpec
    let params: Params
    let id: RequestID?
    let reply: (@Sendable ([UInt8]) -> Void)?

    /// What the call counts against the queue's bytes while it waits: its
    /// params as they sit in memory, and the bookkeeping around them.
    var parkedCost: Int { 512 + JSONValue.object(params.values).memoryFootprint }

    /// Answers -32800: it was cancelled before it ran.
    func answerCancelled() {
        if let id, let reply { reply(MessageEncoding.error(id: id, .cancelled)) }
    }
}

/// The dispatcher, as the calls it runs see it: set once, at the end of
/// its init, and not keeping it alive.
private final class WeakDispatcher: Sendable {
    private let reference = Locked<Weak?>(nil)
    private struct Weak: @unchecked Sendable { weak var dispatcher: Dispatcher? }

    func set(_ dispatcher: Dispatcher) { reference.withLock { $0 = Weak(dispatcher: dispatcher) } }
    var value: Dispatcher? { reference.withLock { $0?.dispatcher } }
}
