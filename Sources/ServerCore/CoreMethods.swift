import CSystem
import JSON
import RPCDispatch

/// The lifecycle and server methods of the contract: `initialize`,
/// `shutdown`, `exit`, `rpc.discover`, `server.stats`, `server.clearCache`.
enum CoreMethods {
    static let names = ["initialize", "shutdown", "exit", "rpc.discover", "server.stats", "server.clearCache"]

    /// The contract, parsed once.
    private static let document: JSONValue? = try? JSONParser.parse(OpenRPCDocument.text)

    /// The methods, ending the session through `lifecycle`; `methodNames`
    /// is everything served, for `initialize`.
    static func specs(lifecycle: Lifecycle, extensions: [ServerExtension], methodNames: [String]) -> [MethodSpec] {
        let initializeResult = initializeResult(extensions: extensions, methodNames: methodNames)
        return [
            MethodSpec(
                "initialize",
                params: [
                    ParamSpec("processId", .any, required: false, positional: false),
                    ParamSpec("clientInfo", .object, required: false, positional: false),
                    ParamSpec("capabilities", .object, required: false, positional: false),
                    ParamSpec("protocolVersion", .string, required: false, positional: false),
                ],
                ignoresUnknownParams: true, runsImmediately: true
            ) { _, _ in initializeResult },
            // Refuses later requests from the moment it is read, then
            // answers once the others in flight have.
            MethodSpec(
                "shutdown",
                onReceive: { dispatcher in
                    lifecycle.requestShutdown()
                    dispatcher.beginShutdown()
                }, runsImmediately: true
            ) { _, context in
                await context.dispatcher.waitUntilIdle(leaving: 1)
                return .null
            },
            MethodSpec("exit", runsImmediately: true) { _, _ in
                lifecycle.exitRequested()
                return .null
            },
            MethodSpec("rpc.discover", runsImmediately: true) { _, _ in
                guard let document else {
                    throw RPCError.internalError("The embedded OpenRPC document is invalid")
                }
                return document
            },
            MethodSpec("server.stats", runsImmediately: true) { _, context in
                stats(context.dispatcher, extensions: extensions)
            },
            MethodSpec("server.clearCache", runsImmediately: true) { _, _ in
                for ext in extensions { ext.clearCaches() }
                return .null
            },
        ]
    }

    private static func initializeResult(extensions: [ServerExtension], methodNames: [String]) -> JSONValue {
        var capabilities: JSONObject = [
            "methods": .array(methodNames.map { .string($0) }),
            "framing": ["ndjson", "content-length"],
            "partialResults": true,
            "cancellation": true,
        ]
        for member in extensions.flatMap(\.capabilities) { capabilities.append(member.key, member.value) }
        return [
            "protocolVersion": .string(ServerVersion.protocolVersion),
            "serverInfo": ["name": "ocirpc", "version": .string(ServerVersion.current)],
            "capabilities": .object(capabilities),
        ]
    }

    private static func stats(_ dispatcher: Dispatcher, extensions: [ServerExtension]) -> JSONValue {
        var object = JSONObject()
        var requests = JSONObject()
        for (method, count) in dispatcher.requestsByMethod.sorted(by: { $0.key < $1.key }) {
            requests.append(method, .integer(count))
        }
        object.append("requests", .object(requests))
        // Not counting the server.stats call that is asking.
        object.append("inFlight", .integer(max(0, dispatcher.inFlightCount - 1)))
        object.append("heapBytes", .integer(Int(ocirpc_heap_bytes_in_use())))
        object.append(
            "memoryHeld",
            ["used": .integer(dispatcher.memory.heldBytes), "budget": .integer(dispatcher.memory.limit)])
        for ext in extensions {
            for member in ext.stats() { object.append(member.key, member.value) }
        }
        return .object(object)
    }
}
