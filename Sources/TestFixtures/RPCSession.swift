import Foundation
import JSON

/// A JSON-RPC conversation with the built `ocirpc` binary: numbered
/// requests, responses matched by id, notifications kept in order.
public final class RPCSession: @unchecked Sendable {
    public let process: ServerProcess
    private let lock = NSLock()
    private var nextID = 0

    public init(_ arguments: [String] = [], environment: [String: String] = [:], launcher: [String] = []) throws {
        process = try ServerProcess(arguments, environment: environment, launcher: launcher)
    }

    /// Sends a request; returns its id.
    @discardableResult
    public func send(_ method: String, _ params: JSONValue) -> Int {
        let id = lock.withLock { () -> Int in
            nextID += 1
            return nextID
        }
        let message: JSONValue = ["jsonrpc": "2.0", "id": .integer(id), "method": .string(method), "params": params]
        process.sendLine(message.jsonText)
        return id
    }

    /// Sends a notification.
    public func notify(_ method: String, _ params: JSONValue) {
        let message: JSONValue = ["jsonrpc": "2.0", "method": .string(method), "params": params]
        process.sendLine(message.jsonText)
    }

    /// The response to request `id` (the whole message), waiting for it.
    public func response(_ id: Int, seconds: Double = 180) async throws -> JSONValue {
        try await response(seconds: seconds, matching: .integer(id))
    }

    /// The first message whose id is `id`, waiting for it; each poll
    /// looks only at the messages that came since the one before. Once
    /// the server's output has ended no answer can come: that fails at
    /// once (a server that refused its arguments and exited was waited
    /// for until the deadline).
    private func response(seconds: Double, matching id: JSONValue) async throws -> JSONValue {
        let deadline = Date().addingTimeInterval(seconds)
        var looked = 0
        while Date() < deadline {
            let ended = process.outputHasEnded
            let messages = process.messages
            if let found = messages[min(looked, messages.count)...].first(where: { $0["id"] == id }) { return found }
            if ended {
                throw TestRegistryError(
                    "the server's output ended before it answered request \(id); stderr: \(process.stderr.suffix(800))")
            }
            // A last line without its newline is counted only once the
            // output ends, so it is looked at again until then.
            looked = max(0, messages.count - 1)
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestRegistryError(
            "no response to request \(id) within \(seconds) s; stderr: \(process.stderr.suffix(800))")
    }

    /// The response to the request whose id is the string `id` (sent by hand).
    public func response(_ unused: Int = -1, id: String, seconds: Double = 180) async throws -> JSONValue {
        try await response(seconds: seconds, matching: .string(id))
    }

    /// Sends a request and waits for its response message.
    public func call(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        try await response(send(method, params))
    }

    /// The `result` of a call, failing when the call answered an error.
    public func result(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        let message = try await call(method, params)
        guard let result = message["result"] else {
            throw TestRegistryError("\(method) failed: \(message.jsonText)")
        }
        return result
    }

    /// Notifications received so far, in order.
    public var notifications: [JSONValue] { process.messages.filter { $0["id"] == nil } }

    /// Closes stdin and waits for the exit status.
    @discardableResult
    public func close() async -> Int32? {
        process.closeInput()
        return await process.waitForExit()
    }
}
