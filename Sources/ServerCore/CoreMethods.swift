import JSON
import RPCDispatch

/// The lifecycle and server methods of the contract: `initialize`,
/// `shutdown`, `exit`, `rpc.discover`, `server.stats`, `server.clearCache`.
final class CoreMethods: @unchecked Sendable {
    private let configuration: ServerConfiguration
    private let extensions: [ServerExtension]
    // Set once by the server before it reads any input.
    private weak var server: Server?
    private var methodNames: [String] = []

    init(configuration: ServerConfiguration, extensions: [ServerExtension]) {
        self.configuration = configuration
        self.extensions = extensions
    }

    func attach(server: Server, methodNames: [String]) {
        self.server = server
        self.methodNames = methodNames
    }

    var specs: [MethodSpec] {
        [
            MethodSpec(
                "initialize",
                params: [
                    ParamSpec("processId", .any, required: false, positional: false),
                    ParamSpec("clientInfo", .object, required: false, positional: false),
                    ParamSpec("capabilities", .object, required: false, positional: false),
                    ParamSpec("protocolVersion", .string, required: false, positional: false),
                ],
                ignoresUnknownParams: true, runsImmediately: true
            ) { [self] _, _ in initializeResult },
            MethodSpec("shutdown", onReceive: { [self] in server?.markShuttingDown() }, runsImmediately: true) { [self] _, _ in
                await server?.beginShutdown()
                return .null
            },
            MethodSpec("exit", runsImmediately: true) { [self] _, _ in
                server?.exitRequested()
                return .null
            },
            MethodSpec("rpc.discover", runsImmediately: true) { _, _ in
                do {
                    return try JSONParser.parse(OpenRPCDocument.text)
                } catch {
                    throw RPCError.internalError("The embedded OpenRPC document is invalid")
                }
            },
            MethodSpec("server.stats", runsImmediately: true) { [self] _, _ in stats },
            MethodSpec("server.clearCache", runsImmediately: true) { [self] _, _ in
                for ext in extensions { ext.clearCaches() }
                return .null
            },
        ]
    }

    private var initializeResult: JSONValue {
        [
            "protocolVersion": .string(ServerVersion.protocolVersion),
            "serverInfo": ["name": "ocirpc", "version": .string(ServerVersion.current)],
            "capabilities": [
                "methods": .array(methodNames.map { .string($0) }),
                "framing": ["ndjson", "content-length"],
                "partialResults": true,
                "cancellation": true,
                "maxConcurrency": .integer(configuration.maxConcurrency),
            ],
        ]
    }

    private var stats: JSONValue {
        var object = JSONObject()
        guard let dispatcher = server?.dispatcherForCore else { return .object(object) }
        var requests = JSONObject()
        for (method, count) in dispatcher.requestsByMethod.sorted(by: { $0.key < $1.key }) {
            requests.append(method, .integer(count))
        }
        object.append("requests", .object(requests))
        // Not counting the server.stats call that is asking.
        object.append("inFlight", .integer(max(0, dispatcher.inFlightCount - 1)))
        for ext in extensions {
            for member in ext.stats() { object.append(member.key, member.value) }
        }
        return .object(object)
    }
}
