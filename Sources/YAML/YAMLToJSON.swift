import CYAML
import JSON

/// Why a document could not be converted.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    /// Whether the document was refused for a limit (size, depth, aliases)
    /// rather than for its syntax.
    public let isLimit: Bool

    init(message: String, isLimit: Bool = false) {
        self.message = message
        self.isLimit = isLimit
    }

    public var description: String { message }
}

/// Converts YAML (and JSON) documents to JSON values the way the policy
/// builtins do (`sigs.k8s.io/yaml` over go-yaml v2): the first document
/// only, go-yaml v2 scalar resolution, map keys as strings. libyaml parses;
/// this file only builds values and resolves plain scalars.
public enum YAMLToJSON {
    /// What a document may expand to; anything past a limit is refused.
    public struct Limits: Sendable {
        /// Nesting, aliases expanded.
        public var maxDepth = 512
        /// Values produced, aliases expanded.
        public var maxNodes = 1_000_000
        /// Output size (its JSON text), aliases expanded.
        public var maxOutputBytes = 256 << 20
        /// What aliases may add to the output, in bytes: this many...
        public var aliasAllowanceBytes = 4 << 20
        /// ...or this many times the document's own size, whichever is more.
        public var aliasAllowanceRatio = 4

        public init() {}

        /// The limits the server uses.
        public static let standard = Limits()
    }

    /// The first document of `bytes` as JSON. A document that parses as
    /// JSON is taken as JSON, numbers kept verbatim, and kept as its compact
    /// text: it has no aliases to expand, and a tree of a value-dense file
    /// (entries may be 500 MiB, from a few hundred KB of gzip) would hold
    /// twelve times its size.
    public static func convert(_ bytes: [UInt8], limits: Limits = .standard) throws(YAMLError) -> JSONValue {
        if let json = try? JSONParser.compacted(bytes) { return json }
        var builder = Builder(limits: limits)
        builder.aliasAllowance = max(limits.aliasAllowanceBytes, limits.aliasAllowanceRatio * bytes.count)
        return try builder.parse(bytes)
    }
}

/// A container being built, from libyaml's events.
private struct Frame {
    enum Contents {
        case sequence([JSONValue])
        /// `index` finds a key's member in one step: a mapping of many keys
        /// would be quadratic through JSONObject's linear lookups.
        case mapping(JSONObject, index: [String: Int], pendingKey: String?)
    }

    var contents: Contents
    let anchor: String?
    /// The output's size when the container opened, to measure it when it closes.
    let bytesAtStart: Int
    let nodesAtStart: Int
    /// Nesting of the container: 1 + its deepest child's.
    var height = 1
}

/// What an anchor stands for, measured once: an alias adds all of it.
private struct Anchored {
    let value: JSONValue
    let bytes: Int
    let nodes: Int
    let height: Int
}

private struct Builder {
    let limits: YAMLToJSON.Limits
    var stack: [Frame] = []
    var anchors: [String: Anchored] = [:]
    var nodes = 0
    var bytes = 0
    /// Bytes aliases may still add (a small document cannot grow huge).
    var aliasAllowance = 0
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
            let start = (bytes, nodes)
            try count(bytes: value.textLengthWithoutEscapes + 1, nodes: 1, height: 0)
            try add(value, anchor: scalar.anchor.map { String(cString: $0) }, measured: start, height: 0)
        case YAML_SEQUENCE_START_EVENT:
            try push(.sequence([]), anchor: event.data.sequence_start.anchor.map { String(cString: $0) })
        case YAML_MAPPING_START_EVENT:
            try push(
                .mapping(JSONObject(), index: [:], pendingKey: nil),
                anchor: event.data.mapping_start.anchor.map { String(cString: $0) })
        case YAML_SEQUENCE_END_EVENT:
            guard let frame = stack.popLast(), case .sequence(let elements) = frame.contents else {
                throw YAMLError(message: "unbalanced sequence")
            }
            try add(
                .array(elements), anchor: frame.anchor, measured: (frame.bytesAtStart, frame.nodesAtStart),
                height: frame.height)
        case YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast(), case .mapping(let object, _, _) = frame.contents else {
                throw YAMLError(message: "unbalanced mapping")
            }
            try add(
                .object(object), anchor: frame.anchor, measured: (frame.bytesAtStart, frame.nodesAtStart),
                height: frame.height)
        case YAML_ALIAS_EVENT:
            let name = String(cString: event.data.alias.anchor)
            guard let anchored = anchors[name] else { throw YAMLError(message: "unknown anchor '\(name)'") }
            // The alias stands for a copy of everything the anchor holds.
            aliasAllowance -= anchored.bytes
            guard aliasAllowance >= 0 else {
                throw YAMLError(message: "YAML aliases expand to more than the document's allowance", isLimit: true)
            }
            try count(bytes: anchored.bytes, nodes: anchored.nodes, height: anchored.height)
            try add(anchored.value, anchor: nil, measured: nil, height: anchored.height)
        default:
            break
        }
    }

    /// Counts output toward the limits; `height` is the nesting it adds
    /// below the current container.
    mutating func count(bytes added: Int, nodes addedNodes: Int, height: Int) throws(YAMLError) {
        bytes += added
        nodes += addedNodes
        guard bytes <= limits.maxOutputBytes else {
            throw YAMLError(message: "YAML expands to more than \(limits.maxOutputBytes) bytes", isLimit: true)
        }
        guard nodes <= limits.maxNodes else {
            throw YAMLError(message: "YAML expands to more than \(limits.maxNodes) values", isLimit: true)
        }
        guard stack.count + height <= limits.maxDepth else {
            throw YAMLError(message: "YAML nested deeper than \(limits.maxDepth)", isLimit: true)
        }
    }

    mutating func push(_ contents: Frame.Contents, anchor: String?) throws(YAMLError) {
        try count(bytes: 2, nodes: 1, height: 1)
        stack.append(Frame(contents: contents, anchor: anchor, bytesAtStart: bytes - 2, nodesAtStart: nodes - 1))
    }

    /// Adds a finished value to the enclosing container (or as the result).
    /// `measured` is where the output stood when the value began, to record
    /// an anchor's size; `height` is the value's nesting.
    mutating func add(_ value: JSONValue, anchor: String?, measured: (Int, Int)?, height: Int) throws(YAMLError) {
        if let anchor, let (bytesAtStart, nodesAtStart) = measured {
            anchors[anchor] = Anchored(
                value: value, bytes: bytes - bytesAtStart, nodes: nodes - nodesAtStart,
                height: height)
        }
        guard var top = stack.popLast() else {
            if result == nil { result = value }
            return
        }
        top.height = max(top.height, height + 1)
        switch top.contents {
        case .sequence(var elements):
            top.contents = .sequence([])
            elements.append(value)
            top.contents = .sequence(elements)
        case .mapping(var object, var index, let pendingKey):
            top.contents = .sequence([])
            if let key = pendingKey {
                // A repeated key keeps its place and takes the later value.
                if let existing = index[key] {
                    object.replaceValue(at: existing, with: value)
                } else {
                    index[key] = object.count
                    object.append(key, value)
                }
                top.contents = .mapping(object, index: index, pendingKey: nil)
            } else {
                top.contents = .mapping(object, index: index, pendingKey: try Self.key(value))
            }
        }
        stack.append(top)
    }

    /// A map key as the string `sigs.k8s.io/yaml` makes of it.
    static func key(_ value: JSONValue) throws(YAMLError) -> String {
        switch value {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .encoded(let text): return try key(text.value)
        case .array, .object: throw YAMLError(message: "a map key must be a scalar")
        }
    }
}
