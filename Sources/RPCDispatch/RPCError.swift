import JSON
import Memory
import Reasons

/// The error codes of the ocirpc contract (`protocol/openrpc.json`, `components.errors`).
public enum RPCErrorCode: Int, Sendable, CaseIterable {
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603
    case requestCancelled = -32800
    case notFound = -32001
    case accessDenied = -32002
    case integrityFailure = -32003
    case registryUnavailable = -32004
    case limitExceeded = -32005
    case unsupportedContent = -32006
}

/// A JSON-RPC error object as a value: a code from the contract, a message
/// for people and `data` with at least a snake_case `reason`.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: RPCErrorCode
    /// `data.reason`: why, one level finer than `code`.
    public var reason: ErrorReason
    public var message: String
    /// The other members of `data` (`ref`, `httpStatus`, ...).
    public var data: JSONObject

    public init(_ code: RPCErrorCode, reason: ErrorReason, message: String, data extra: JSONObject = JSONObject()) {
        self.code = code
        self.reason = reason
        self.message = message
        var data = JSONObject()
        for member in extra.members where member.key != "reason" {
            data.append(member.key, member.value)
        }
        self.data = data
    }

    /// The error object `{code, message, data}`, `data.reason` first.
    public var json: JSONValue {
        var details = JSONObject()
        details.append("reason", .string(reason.rawValue))
        for member in data.members { details.append(member.key, member.value) }
        var object = JSONObject()
        object.append("code", .integer(code.rawValue))
        object.append("message", .string(message))
        object.append("data", .object(details))
        return .object(object)
    }

    public var description: String { "\(code.rawValue) \(reason.rawValue): \(message)" }

    /// A copy with one more `data` member.
    public func with(_ key: String, _ value: JSONValue) -> RPCError {
        var copy = self
        copy.data[key] = value
        return copy
    }
}

extension RPCError {
    public static func parseError(_ detail: String) -> RPCError {
        RPCError(.parseError, reason: .invalidJSON, message: "Parse error: \(detail)")
    }

    public static func invalidRequest(reason: ErrorReason, _ message: String) -> RPCError {
        RPCError(.invalidRequest, reason: reason, message: message)
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(.methodNotFound, reason: .unknownMethod, message: "Method not found: \(method)")
    }

    public static func invalidParams(reason: ErrorReason, _ message: String) -> RPCError {
        RPCError(.invalidParams, reason: reason, message: message)
    }

    public static func internalError(_ message: String) -> RPCError {
        RPCError(.internalError, reason: .internal, message: message)
    }

    /// -32005 `memory_limit`: the calls in flight hold what this one
    /// needs (retryable once they are done).
    public static func memoryLimit(_ error: MemoryLimitExceeded, ref: String? = nil) -> RPCError {
        var data = JSONObject()
        if let ref { data.append("ref", .string(ref)) }
        data.append("retryable", .bool(true))
        return RPCError(
            .limitExceeded, reason: MemoryLimitExceeded.reason,
            message: ref.map { "\($0): \(error.message)" } ?? error.message, data: data)
    }

    public static let cancelled = RPCError(
        .requestCancelled, reason: .cancelled, message: "Request cancelled")
}
