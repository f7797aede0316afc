import JSON

/// A JSON-RPC request id, echoed exactly in the response.
public enum RequestID: Hashable, Sendable {
    case string(String)
    /// A numeric id, kept as its exact text.
    case number(String)
    case null

    /// The id from a message's `id` member; nil when it is not a valid id type.
    public init?(_ value: JSONValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .number(let n): self = .number(n)
        case .null: self = .null
        default: return nil
        }
    }

    /// The id as a log line shows it: a string's text, a number's digits,
    /// `null`.
    public var logText: String {
        switch self {
        case .string(let s): s
        case .number(let n): n
        case .null: "null"
        }
    }

    /// The id as a JSON value.
    public var json: JSONValue {
        switch self {
        case .string(let s): return .string(s)
        case .number(let n): return .number(n)
        case .null: return .null
        }
    }
}
