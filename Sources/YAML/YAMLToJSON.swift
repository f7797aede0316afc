import CYAML
import JSON

/// Why a document could not be converted.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Converts YAML (and JSON) documents to JSON values the way the policy
/// builtins do (`sigs.k8s.io/yaml` over go-yaml v2): the first document
/// only, go-yaml v2 scalar resolution, map keys as strings. libyaml parses;
/// this file only builds values and resolves plain scalars.
public enum YAMLToJSON {
    /// Nesting deeper than this is refused.
    public static let maxDepth = 512
    /// Values produced (aliases expanded) beyond this are refused.
    public static let maxNodes = 1_000_000

    /// The first document of `bytes` as JSON. A document that parses as
    /// JSON is taken as JSON, numbers kept verbatim.
    public static func convert(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue {
        if let json = try? JSONParser.parse(bytes) { return json }
        var builder = Builder()
        return try builder.parse(bytes)
    }
}

/// A container being built, from libyaml's events.
private enum Frame {
    case sequence(anchor: String?, elements: [JSONValue])
    case mapping(anchor: String?, object: JSONObject, pendingKey: String?)
}

private struct Builder {
    var stack: [Frame] = []
    var anchors: [String: JSONValue] = [:]
    var nodes = 0
    var result: JSONValue?

    mutating func parse(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue {
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw YAMLError(message: "libyaml could not be initialised") }
        defer { yaml_parser_delete(parser) }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(YAMLError) -> JSONValue in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(parser, &event) == 1 else {
                    let problem = parser.pointee.problem.map { String(cString: $0) } ?? "invalid YAML"
                    let line = parser.pointee.problem_mark.line + 1
                    throw YAMLError(message: "\(problem) at line \(line)")
                }
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT, YAML_DOCUMENT_END_EVENT:
                    return result ?? .null
                default:
                    try handle(&event)
                }
            }
        }
    }

    mutating func handle(_ event: inout yaml_event_t) throws(YAMLError) {
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let tag = scalar.tag.map { String(cString: $0) }
            let value: JSONValue
            if scalar.style != YAML_PLAIN_SCALAR_STYLE || tag == "tag:yaml.org,2002:str" || tag == "!" {
                value = .string(text)
            } else {
                value = try ScalarResolver.resolve(text)
            }
            try add(value, anchor: scalar.anchor.map { String(cString: $0) })
        case YAML_SEQUENCE_START_EVENT:
            try push(.sequence(anchor: event.data.sequence_start.anchor.map { String(cString: $0) }, elements: []))
        case YAML_MAPPING_START_EVENT:
            try push(.mapping(anchor: event.data.mapping_start.anchor.map { String(cString: $0) },
                              object: JSONObject(), pendingKey: nil))
        case YAML_SEQUENCE_END_EVENT:
            guard case .sequence(let anchor, let elements)? = stack.popLast() else {
                throw YAMLError(message: "unbalanced sequence")
            }
            try add(.array(elements), anchor: anchor)
        case YAML_MAPPING_END_EVENT:
            guard case .mapping(let anchor, let object, _)? = stack.popLast() else {
                throw YAMLError(message: "unbalanced mapping")
            }
            try add(.object(object), anchor: anchor)
        case YAML_ALIAS_EVENT:
            let name = String(cString: event.data.alias.anchor)
            guard let value = anchors[name] else { throw YAMLError(message: "unknown anchor '\(name)'") }
            try add(value, anchor: nil, weight: Self.weight(of: value))
        default:
            break
        }
    }

    mutating func push(_ frame: Frame) throws(YAMLError) {
        guard stack.count < YAMLToJSON.maxDepth else { throw YAMLError(message: "YAML nested too deeply") }
        stack.append(frame)
    }

    /// Adds a finished value to the enclosing container (or as the result).
    mutating func add(_ value: JSONValue, anchor: String?, weight: Int = 1) throws(YAMLError) {
        nodes += weight
        guard nodes <= YAMLToJSON.maxNodes else { throw YAMLError(message: "YAML expands to too many values") }
        if let anchor { anchors[anchor] = value }
        guard let top = stack.popLast() else {
            if result == nil { result = value }
            return
        }
        switch top {
        case .sequence(let anchor, var elements):
            elements.append(value)
            stack.append(.sequence(anchor: anchor, elements: elements))
        case .mapping(let anchor, var object, let pendingKey):
            if let key = pendingKey {
                object[key] = value
                stack.append(.mapping(anchor: anchor, object: object, pendingKey: nil))
            } else {
                stack.append(.mapping(anchor: anchor, object: object, pendingKey: try Self.key(value)))
            }
        }
    }

    /// A map key as the string `sigs.k8s.io/yaml` makes of it.
    static func key(_ value: JSONValue) throws(YAMLError) -> String {
        switch value {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array, .object: throw YAMLError(message: "a map key must be a scalar")
        }
    }

    /// How many values an alias adds (bounds "billion laughs" documents).
    static func weight(of value: JSONValue) -> Int {
        switch value {
        case .array(let elements): return elements.reduce(1) { $0 + weight(of: $1) }
        case .object(let object): return object.members.reduce(1) { $0 + weight(of: $1.value) }
        default: return 1
        }
    }
}
