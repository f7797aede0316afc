import CYAML

/// Finds where libyaml and go-yaml v2 would read a document differently.
/// libyaml 0.2.5 scans by YAML 1.2's rules, go-yaml v2 (which the original
/// builtins convert files with) by an older port of libyaml. In flow
/// collections (`[...]`, `{...}`) they part on a `?` inside a plain scalar
/// (go-yaml ends the scalar there) and on a `:` right before `,[]{}`
/// (go-yaml goes on with the scalar); anywhere, on `,[]` right after a tag
/// (go-yaml takes them into the tag); and on text after a top-level flow
/// collection, or right after any (go-yaml reads the collection and stops). A document where
/// one of these comes would convert to another value than the original's,
/// or fail where it reads one, so it is refused as ambiguous, failing the
/// call (a file left out would read as absent).
enum FlowScanCheck {
    /// What libyaml says when its scanner stops where go-yaml's goes on:
    /// after a tag (`!!int[`), inside one, and at a `:` in a flow scalar.
    static let problemsWhereGoYAMLReadsOn: Set<String> = [
        "did not find expected whitespace or line break", "did not find expected tag URI", "found unexpected ':'",
    ]

    /// The first place where the two scanners part in `bytes`, whose
    /// characters are `text`, described; nil when
    /// they read the document alike (or libyaml cannot scan it for another
    /// reason: the parse that follows says why).
    static func ambiguity(in bytes: [UInt8], text: YAMLText) -> String? {
        // Most files have no flow collection and no tag: nothing to scan for.
        guard
            bytes.contains(where: {
                $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "!")
            })
        else { return nil }
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { return nil }
        defer { yaml_parser_delete(parser) }
        return bytes.withUnsafeBufferPointer { buffer -> String? in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var scan = Scan(text)
            var token = yaml_token_t()
            while true {
                guard yaml_parser_scan(parser, &token) == 1 else {
                    let problem = parser.pointee.problem.map { String(cString: $0) } ?? ""
                    guard problemsWhereGoYAMLReadsOn.contains(problem) else { return nil }
                    return "\(problem) (line \(parser.pointee.problem_mark.line + 1))"
                }
                defer { yaml_token_delete(&token) }
                if token.type == YAML_STREAM_END_TOKEN || token.type == YAML_DOCUMENT_END_TOKEN { return nil }
                if let found = scan.next(token) { return "\(found) (line \(token.start_mark.line + 1))" }
            }
        }
    }

    /// What the tokens so far say.
    private struct Scan {
        /// The characters, which marks count (`YAMLText`).
        let text: YAMLText
        var places = YAMLText.Places()
        var flowLevel = 0
        /// Whether the document is a top-level flow collection (nil before
        /// its first token), and whether that collection has ended.
        var rootIsFlow: Bool?
        var rootEnded = false
        /// Where the last flow collection ended.
        var lastFlowEnd = -1

        init(_ text: YAMLText) { self.text = text }

        private func byte(_ offset: Int) -> UInt8? { offset < text.bytes.count ? text.bytes[offset] : nil }

        /// The place `token` is where the scanners part, if it is one.
        mutating func next(_ token: yaml_token_t) -> String? {
            let start = places.byteOffset(ofCharacter: Int(token.start_mark.index), in: text)
            let end = places.byteOffset(ofCharacter: Int(token.end_mark.index), in: text)
            switch token.type {
            case YAML_STREAM_START_TOKEN, YAML_DOCUMENT_START_TOKEN: return nil
            default: break
            }
            if rootEnded { return "text after a top-level flow collection" }
            // `{}text`: go-yaml reads the collection and stops.
            if token.type == YAML_SCALAR_TOKEN && start == lastFlowEnd { return "text right after a flow collection" }
            let opens = token.type == YAML_FLOW_SEQUENCE_START_TOKEN || token.type == YAML_FLOW_MAPPING_START_TOKEN
            if rootIsFlow == nil { rootIsFlow = opens }
            switch token.type {
            case YAML_FLOW_SEQUENCE_START_TOKEN, YAML_FLOW_MAPPING_START_TOKEN:
                flowLevel += 1
            case YAML_FLOW_SEQUENCE_END_TOKEN, YAML_FLOW_MAPPING_END_TOKEN:
                flowLevel = max(0, flowLevel - 1)
                lastFlowEnd = end
                if flowLevel == 0 && rootIsFlow == true { rootEnded = true }
            case YAML_SCALAR_TOKEN where flowLevel > 0 && token.data.scalar.style == YAML_PLAIN_SCALAR_STYLE:
                if text.bytes[start..<end].contains(UInt8(ascii: "?")) {
                    return "a '?' inside a plain scalar in a flow collection"
                }
                if byte(end) == UInt8(ascii: ":"), let next = byte(end + 1), Array(",[]{}".utf8).contains(next) {
                    return "a ':' before '\(Character(Unicode.Scalar(next)))' in a flow collection"
                }
            case YAML_TAG_TOKEN:
                if let next = byte(end), Array(",[]".utf8).contains(next) {
                    return "a '\(Character(Unicode.Scalar(next)))' right after a tag"
                }
            default:
                break
            }
            return nil
        }
    }
}
