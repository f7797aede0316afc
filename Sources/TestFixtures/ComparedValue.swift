import JSON

/// A JSON value compared as a policy sees it, for the tests that hold the
/// server's readers to Go's: objects by key (in any order; a key written
/// twice is two values, which Go never writes), numbers by their float64
/// value (Go reads numbers into float64 and writes `1.0` as `1`, where the
/// server keeps a number's text); keys and strings by their bytes, as Go
/// compares them (`String`'s `==` would equate canonically equivalent
/// spellings).
public indirect enum ComparedValue: Equatable, Sendable {
    case null, bool(Bool), number(Double), string([UInt8]), array([ComparedValue])
    case object([[UInt8]: [ComparedValue]])

    public init(_ json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let text): self = .number(Double(text) ?? .nan)
        case .string(let s): self = .string(Array(s.utf8))
        case .array(let elements): self = .array(elements.map(ComparedValue.init))
        case .object(let object):
            var members: [[UInt8]: [ComparedValue]] = [:]
            for member in object.members {
                members[Array(member.key.utf8), default: []].append(ComparedValue(member.value))
            }
            self = .object(members)
        case .encoded(let text): self = ComparedValue(text.value)
        }
    }
}
