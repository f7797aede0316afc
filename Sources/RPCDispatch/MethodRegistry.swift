import Reasons
import JSON

/// What a handler knows about the call it serves.
public struct RequestContext: Sendable {
    /// The request id; nil for a notification.
    public let id: RequestID?
    public let method: String
    /// Sends notifications (such as `$/progress`) to the client.
    public let notifications: NotificationSender
    /// The dispatcher running the call (what lifecycle and statistics
    /// methods report on and shut down).
    public let dispatcher: Dispatcher
}

/// Sends server-to-client notifications.
public struct NotificationSender: Sendable {
    let sink: any MessageSink

    public init(sink: any MessageSink) {
        self.sink = sink
    }

    /// Sends `{"jsonrpc":"2.0","method":method,"params":params}`.
    public func notify(_ method: String, _ params: JSONValue) {
        sink.send(MessageEncoding.notification(method: method, params: params))
    }

    /// Returns once the client has taken enough of what was sent: call it
    /// before each of many notifications, so that a slow client holds the
    /// sender back (`MessageSink.waitForRoom`).
    public func waitForRoom() async { await sink.waitForRoom() }

    /// Sends one `$/progress` notification for a partial-result token.
    public func progress(token: JSONValue, value: JSONValue) {
        notify("$/progress", ["token": token, "value": value])
    }
}

/// Serves one method: validated params in, result out; throw an `RPCError`
/// to answer with an error.
public typealias MethodHandler = @Sendable (Params, RequestContext) async throws -> JSONValue

/// One method the server offers: its name, declared params and handler.
public struct MethodSpec: Sendable {
    public let name: String
    public let params: [ParamSpec]
    /// Whether named params not declared are ignored rather than refused
    /// (for `initialize`, whose LSP-style clients send extra fields).
    public let ignoresUnknownParams: Bool
    /// Runs on the reader thread, in input order, before the handler's task
    /// starts (e.g. `shutdown` must refuse the very next request).
    public let onReceive: (@Sendable (Dispatcher) -> Void)?
    /// Starts at once even while other calls wait for a turn: lifecycle and
    /// statistics methods, which must answer while registry work is stuck.
    public let runsImmediately: Bool
    /// Whether the call holds content sized by what a registry sent (files
    /// or blobs read whole, a batch's answers kept until the last): it
    /// runs with a `MemoryShare` of the dispatcher's budget bound to
    /// `MemoryShare.current`, and its answer is taken from the budget
    /// before it is written.
    public let holdsMemory: Bool
    public let handler: MethodHandler

    public init(
        _ name: String, params: [ParamSpec] = [], ignoresUnknownParams: Bool = false,
        onReceive: (@Sendable (Dispatcher) -> Void)? = nil, runsImmediately: Bool = false,
        holdsMemory: Bool = false, handler: @escaping MethodHandler
    ) {
        self.onReceive = onReceive
        self.runsImmediately = runsImmediately
        self.holdsMemory = holdsMemory
        self.name = name
        self.params = params
        self.ignoresUnknownParams = ignoresUnknownParams
        self.handler = handler
    }

    /// Maps raw `params` (absent, array or object) onto the declared names,
    /// checking count, names and types before any handler runs.
    public func bind(_ raw: JSONValue?) throws(RPCError) -> Params {
        var bound = JSONObject()
        switch raw {
        case nil, .null?:
            break
        case .array(let elements)?:
            let positional = params.filter(\.positional)
            guard elements.count <= positional.count else {
                throw .invalidParams(
                    reason: .wrongArity,
                    "\(name) takes at most \(positional.count) positional parameter(s), got \(elements.count)")
            }
            for (spec, value) in zip(positional, elements) { bound.append(spec.name, value) }
        case .object(let object)?:
            for member in object.members where !ignoresUnknownParams {
                guard params.contains(where: { $0.name == member.key }) else {
                    throw .invalidParams(reason: .unknownParam, "\(name) has no parameter '\(member.key)'")
                }
            }
            bound = object
        case let other?:
            throw .invalidParams(
                reason: .wrongType, "params must be an array or an object, not \(other.kindName)")
        }
        for spec in params {
            guard let value = bound[spec.name], !(value.isNull && !spec.required) else {
                if spec.required {
                    throw .invalidParams(reason: .missingParam, "\(name) requires '\(spec.name)'")
                }
                continue
            }
            guard spec.kind.accepts(value) else {
                throw .invalidParams(
                    reason: spec.wrongTypeReason,
                    "'\(spec.name)' must be \(spec.kind.expectation), not \(value.kindName)")
            }
        }
        return Params(bound)
    }
}

/// The methods a server offers, by name.
public struct MethodRegistry: Sendable {
    private var methods: [String: MethodSpec] = [:]

    public init() {}

    public mutating func register(_ spec: MethodSpec) {
        methods[spec.name] = spec
    }

    public mutating func register(_ specs: [MethodSpec]) {
        for spec in specs { register(spec) }
    }

    public func lookup(_ name: String) -> MethodSpec? { methods[name] }

    /// Every registered method name, sorted.
    public var names: [String] { methods.keys.sorted() }
}
