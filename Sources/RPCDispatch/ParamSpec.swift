import Reasons
import JSON

/// The JSON type a parameter accepts.
public enum ParamKind: Sendable {
    case string
    case stringArray
    case stringOrNumber
    case bool
    case object
    case any

    func accepts(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string, .string), (.bool, .bool), (.object, .object), (.any, _),
            (.stringOrNumber, .string), (.stringOrNumber, .number):
            return true
        case (.stringArray, .array(let elements)):
            return elements.allSatisfy { $0.stringValue != nil }
        default:
            return false
        }
    }

    var expectation: String {
        switch self {
        case .string: return "a string"
        case .stringArray: return "an array of strings"
        case .stringOrNumber: return "a string or a number"
        case .bool: return "a boolean"
        case .object: return "an object"
        case .any: return "any value"
        }
    }
}

/// One declared parameter of a method.
public struct ParamSpec: Sendable {
    public var name: String
    public var kind: ParamKind
    public var required: Bool
    /// Whether it may be passed by position (in declaration order).
    public var positional: Bool
    /// The `reason` of the -32602 error when the value has the wrong type.
    public var wrongTypeReason: ErrorReason

    public init(
        _ name: String, _ kind: ParamKind, required: Bool = true, positional: Bool = true,
        wrongTypeReason: ErrorReason = .wrongType
    ) {
        self.name = name
        self.kind = kind
        self.required = required
        self.positional = positional
        self.wrongTypeReason = wrongTypeReason
    }
}

/// A request's parameters after validation, by name.
public struct Params: Sendable {
    public let values: JSONObject

    public init(_ values: JSONObject = JSONObject()) {
        self.values = values
    }

    public subscript(name: String) -> JSONValue? { values[name] }

    /// A required string parameter (already validated by the registry).
    public func string(_ name: String) throws(RPCError) -> String {
        guard let s = values[name]?.stringValue else {
            throw .invalidParams(reason: .wrongType, "'\(name)' must be a string")
        }
        return s
    }

    /// An optional string parameter.
    public func optionalString(_ name: String) throws(RPCError) -> String? {
        guard let value = values[name], !value.isNull else { return nil }
        guard let s = value.stringValue else {
            throw .invalidParams(reason: .wrongType, "'\(name)' must be a string")
        }
        return s
    }

    /// A required array-of-strings parameter.
    public func strings(_ name: String, reason: ErrorReason = .wrongType) throws(RPCError) -> [String] {
        guard let array = values[name]?.arrayValue else {
            throw .invalidParams(reason: reason, "'\(name)' must be an array of strings")
        }
        var result: [String] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let s = element.stringValue else {
                throw .invalidParams(reason: reason, "'\(name)' must be an array of strings")
            }
            result.append(s)
        }
        return result
    }
}
