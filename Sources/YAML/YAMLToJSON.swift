import CYAML
import JSON

/// Why a document could not be converted.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    /// Whether the document was refused for a limit (size, depth, aliases)
    /// rather than for its syntax.
    public let isLimit: Bool
    /// Whether the document was refused because the original's converter
    /// would read it otherwise (`FlowScanCheck`): an error, never a file
    /// left out, as for a limit.
    public let isAmbiguous: Bool

    init(message: String, isLimit: Bool = false, isAmbiguous: Bool = false) {
        self.message = message
        self.isLimit = isLimit
        self.isAmbiguous = isAmbiguous
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
        // A number past float64's range (`1e400`) is a string to go-yaml:
        // such a document is read as YAML, as the builtins read it.
        // So is one go-yaml reads otherwise than JSON (`CharacterCheck`).
        if let json = try? JSONParser.compacted(bytes), case .encoded(let text) = json,
            !hasNumberPastFloatRange(text.bytes), CharacterCheck.jsonIsReadAlike(bytes)
        {
            return json
        }
        let text = YAMLText(bytes)
        if let ambiguity = FlowScanCheck.ambiguity(in: bytes, text: text) {
            throw YAMLError(
                message: "YAML readers read this document differently: \(ambiguity)", isAmbiguous: true)
        }
        if CharacterCheck.byteOrderMarkStartsALine(in: text) {
            throw YAMLError(
                message: "YAML readers read this document differently: a byte-order mark starts a line",
                isAmbiguous: true)
        }
        var builder = Builder(limits: limits, text: text)
        builder.aliasAllowance = max(limits.aliasAllowanceBytes, limits.aliasAllowanceRatio * bytes.count)
        return try builder.parse(bytes)
    }
}

extension YAMLToJSON {
    /// Whether compact JSON `text` holds a number whose float64 value is
    /// infinite. Only a number with an exponent, or of hundreds of digits,
    /// can be one: the others are not parsed.
    static func hasNumberPastFloatRange(_ text: [UInt8]) -> Bool {
        var place = 0
        var inString = false
        while place < text.count {
            let byte = text[place]
            if inString {
                if byte == UInt8(ascii: "\\") {
                    place += 1
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                place += 1
                continue
            }
            if byte == UInt8(ascii: "\"") {
                inString = true
                place += 1
                continue
            }
            guard byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) else {
                place += 1
                continue
            }
            let start = place
            var exponent = false
            while place < text.count, let number = Optional(text[place]),
                number == UInt8(ascii: "-") || number == UInt8(ascii: "+") || number == UInt8(ascii: ".")
                    || number == UInt8(ascii: "e") || number == UInt8(ascii: "E")
                    || (number >= UInt8(ascii: "0") && number <= UInt8(ascii: "9"))
            {
                if number == UInt8(ascii: "e") || number == UInt8(ascii: "E") { exponent = true }
                place += 1
            }
            if exponent || place - start > 300,
                let value = Double(String(decoding: text[start..<place], as: UTF8.self)), !value.isFinite
            {
                return true
            }
        }
        return false
    }
}

/// What a mapping's next value is for: a key, or a merge (`<<`).
private enum PendingKey {
    case key(String)
    case merge
}

/// A container being built, from libyaml's events.
private struct Frame {
    enum Contents {
        case sequence([JSONValue])
        /// `index` finds a key's member in one step: a mapping of many keys
        /// would be quadratic through JSONObject's linear lookups.
        /// `index` finds a key's member by the key's bytes (`JSONMemberKey`),
        /// as go-yaml tells Go strings apart: `String`'s `==` would take a
        /// key spelled with `K` (U+212A, the Kelvin sign) for `K`.
        case mapping(JSONObject, index: [JSONMemberKey: Int], pendingKey: PendingKey?)
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
    /// The document's characters, where libyaml's marks point.
    let text: YAMLText
    /// Whether a double-quoted scalar may escape a `/` (`CharacterCheck`).
    let mayHoldSlashEscape: Bool
    var places = YAMLText.Places()
    var stack: [Frame] = []
    /// By the name's bytes, as go-yaml tells anchors apart.
    var anchors: [JSONMemberKey: Anchored] = [:]
    var nodes = 0
    var bytes = 0
    /// Bytes aliases may still add (a small document cannot grow huge).
    var aliasAllowance = 0
    var result: JSONValue?

    init(limits: YAMLToJSON.Limits, text: YAMLText) {
        self.limits = limits
        self.text = text
        mayHoldSlashEscape = CharacterCheck.mayHoldSlashEscape(text)
    }

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
                    if problem == "found unknown escape character",
                        CharacterCheck.isAnEscapeGoYAMLReads(at: Int(parser.pointee.problem_mark.index), in: text)
                    {
                        throw YAMLError(
                            message: "YAML readers read this document differently: an escaped ' at line \(line)",
                            isAmbiguous: true)
                    }
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
        case YAML_DOCUMENT_START_EVENT:
            // libyaml takes 1.1 and 1.2; go-yaml v2 only 1.1.
            if let version = event.data.document_start.version_directive?.pointee,
                version.major != 1 || version.minor != 1
            {
                throw YAMLError(message: "found incompatible YAML document (%YAML \(version.major).\(version.minor))")
            }
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            if scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE, mayHoldSlashEscape {
                let start = places.byteOffset(ofCharacter: Int(event.start_mark.index), in: text)
                let end = places.byteOffset(ofCharacter: Int(event.end_mark.index), in: text)
                // `\/` is `/` to libyaml and an unknown escape to go-yaml.
                if CharacterCheck.escapesASlash(text.bytes[start..<end]) {
                    throw YAMLError(message: "found unknown escape character '/' at line \(event.start_mark.line + 1)")
                }
            }
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let tag = scalar.tag.map { String(cString: $0) }
            let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
            // go-yaml v2 merges the mapping a plain `<<` key (or one tagged
            // `!!merge`) stands before into the one it is in.
            if isAtKey, (plain && tag == nil && text == "<<") || tag == "tag:yaml.org,2002:merge" {
                try count(bytes: 0, nodes: 1, height: 0)
                setPendingMerge()
                return
            }
            let value: JSONValue
            if tag == "tag:yaml.org,2002:binary" {
                // Decoded, whatever its style, as go-yaml v2 decodes it.
                guard let data = Array(text.utf8).withUnsafeBufferPointer(Base64Text.decode) else {
                    throw YAMLError(message: "!!binary value contains invalid base64 data")
                }
                value = .string(String(decoding: data, as: UTF8.self))
            } else if let tag, tag.hasPrefix("tag:yaml.org,2002:"),
                let core = Optional(String(tag.dropFirst("tag:yaml.org,2002:".count))),
                ["null", "bool", "int", "float", "timestamp"].contains(core)
            {
                // A core tag resolves the text whatever its style.
                value = try ScalarResolver.resolve(text, tag: core)
            } else if !plain || tag != nil {
                // Quoted, `!!str`, `!`, or a tag go-yaml does not know: text.
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
            guard let anchored = anchors[JSONMemberKey(text: name)] else {
                throw YAMLError(message: "unknown anchor '\(name)'")
            }
            // The alias stands for a copy of everything the anchor holds.
            aliasAllowance -= anchored.bytes
            guard aliasAllowance >= 0 else {
                throw YAMLError(message: "YAML aliases expand to more than the document's allowance", isLimit: true)
            }
            try count(bytes: anchored.bytes, nodes: anchored.nodes, height: anchored.height)
            try add(anchored.value, anchor: nil, measured: nil, height: anchored.height, viaAlias: true)
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

    /// Whether the next scalar is a key of the innermost mapping.
    var isAtKey: Bool {
        guard case .mapping(_, _, nil) = stack.last?.contents else { return false }
        return true
    }

    /// The innermost mapping's next value is to be merged into it.
    mutating func setPendingMerge() {
        guard var top = stack.popLast(), case .mapping(let object, let index, nil) = top.contents else { return }
        top.contents = .mapping(object, index: index, pendingKey: .merge)
        stack.append(top)
    }

    /// Sets `key` to `value` in a mapping: a repeated key keeps its place
    /// and takes the later value (go-yaml v2 sets a Go map's entry).
    static func set(
        _ key: String, _ value: JSONValue, in object: inout JSONObject, index: inout [JSONMemberKey: Int]
    ) {
        let byBytes = JSONMemberKey(text: key)
        if let existing = index[byBytes] {
            object.replaceValue(at: existing, with: value)
        } else {
            index[byBytes] = object.count
            object.append(key, value)
        }
    }

    /// Merges `value`, a merge key's, into a mapping as go-yaml v2 does: a
    /// mapping's entries are set in it (over the ones before, under the
    /// ones after); a sequence of mappings is merged last first, so the
    /// first wins. An alias must stand for a mapping; anything else fails.
    static func merge(
        _ value: JSONValue, viaAlias: Bool, into object: inout JSONObject, index: inout [JSONMemberKey: Int]
    ) throws(YAMLError) {
        let wantMap = YAMLError(message: "map merge requires map or sequence of maps as the value")
        switch value {
        case .object(let merged):
            for member in merged.members { set(member.key, member.value, in: &object, index: &index) }
        case .array(let elements) where !viaAlias:
            for element in elements.reversed() {
                guard case .object = element else { throw wantMap }
                try merge(element, viaAlias: false, into: &object, index: &index)
            }
        default:
            throw wantMap
        }
    }

    /// Adds a finished value to the enclosing container (or as the result).
    /// `measured` is where the output stood when the value began, to record
    /// an anchor's size; `height` is the value's nesting; `viaAlias` when it
    /// is an alias's.
    mutating func add(
        _ value: JSONValue, anchor: String?, measured: (Int, Int)?, height: Int, viaAlias: Bool = false
    ) throws(YAMLError) {
        if let anchor, let (bytesAtStart, nodesAtStart) = measured {
            anchors[JSONMemberKey(text: anchor)] = Anchored(
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
            switch pendingKey {
            case .key(let key):
                Self.set(key, value, in: &object, index: &index)
                top.contents = .mapping(object, index: index, pendingKey: nil)
            case .merge:
                try Self.merge(value, viaAlias: viaAlias, into: &object, index: &index)
                top.contents = .mapping(object, index: index, pendingKey: nil)
            case nil:
                top.contents = .mapping(object, index: index, pendingKey: .key(try Self.key(value)))
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
        // sigs.k8s.io/yaml has no key for a null one (`~:`, `null:`, `? `).
        case .null: throw YAMLError(message: "a map key must not be null")
        case .encoded(let text): return try key(text.value)
        case .array, .object: throw YAMLError(message: "a map key must be a scalar")
        }
    }
}
