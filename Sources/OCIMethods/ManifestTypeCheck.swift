import Glibc
import JSON
import Registry
import Reasons

/// Checks a manifest, an index or a page of referrers the way Go's
/// `encoding/json` reads it into go-containerregistry's `v1.Manifest` and
/// `v1.IndexManifest`: the types the original builtins read it with, and
/// the ones container runtimes pull images with.
///
/// Answers are shaped leniently (`Shapes`: a field of another type is left
/// empty), so without this check a crafted manifest would get an answer
/// where Go refuses it, and one that reads differently from what the
/// runtime pulls: `"layers": {}` shaped as no layers, `"Layers": [...]`
/// (which Go takes for `layers`, matching keys without regard to case)
/// ignored. What Go refuses is refused here (`invalid_manifest`), and so is
/// what Go reads in a way an exact lookup of a key would not:
///
/// - a known field of another type than Go's: strings, 64-bit integers
///   (no fraction or exponent), arrays, objects of strings; `null` is no
///   value, as in Go, except for a `digest`;
/// - a `digest` that is not `sha256:<64 hex>` or `sha512:<128 hex>` (Go
///   takes only the first), a `data` that is not base64;
/// - a key that is a known field's name in other letter cases (`Layers`,
///   `ſize` with a long s), which Go would read as that field;
/// - a known field given twice, which Go reads by merging the two.
///
/// Fields the shapes do not read are not looked at. Both kinds of
/// document are checked for the fields of both (an image manifest's
/// `manifests`, too): no real manifest carries the other kind's fields
/// with other types.
package enum ManifestTypeCheck {
    /// Where a document and Go's reading of it part.
    package struct Problem: Error, Equatable, CustomStringConvertible {
        /// The members and elements leading to it, outermost first.
        package var path: [PathStep]
        /// What is wrong there.
        package let what: String
        /// Whether Go reads the document, otherwise than an exact lookup of
        /// its keys would (a field given twice, merged; a key in other
        /// letters, as the field), rather than refusing it as well.
        package var goReadsIt = false

        /// The reason a refusal for this problem gives: `ambiguous_manifest`
        /// where Go reads the document (and the original answers),
        /// `invalid_manifest` where Go refuses it too.
        package var reason: ErrorReason { goReadsIt ? .ambiguousManifest : .invalidManifest }

        package var description: String {
            var text = ""
            for step in path {
                switch step {
                case .member(let name): text += text.isEmpty ? name : "." + name
                case .element(let place): text += "[\(place)]"
                }
            }
            return text.isEmpty ? what : "\(text): \(what)"
        }

        /// This problem, one step further in.
        func inside(_ step: PathStep) -> Problem {
            Problem(path: [step] + path, what: what, goReadsIt: goReadsIt)
        }
    }

    /// A step into a document.
    package enum PathStep: Equatable, Sendable {
        case member(String)
        case element(Int)
    }

    /// The first place where Go's reading of `document` and ours part;
    /// nil when they agree.
    package static func problem<Node: JSONDocumentNode>(in document: Node) -> Problem? {
        checkMembers(of: document, documentFields)
    }

    /// The same for an image's config, of the fields read from it: its
    /// `rootfs` (`ocispec.Image`, as containerd reads it to unpack).
    package static func problem<Node: JSONDocumentNode>(inConfig document: Node) -> Problem? {
        checkMembers(of: document, configFields)
    }

    // MARK: - The fields Go reads

    /// A type Go decodes a field into.
    enum FieldType: Sendable {
        case string, integer, digest, base64, strings, stringMap
        /// `v1.Descriptor`, `[]v1.Descriptor`, `*v1.Platform`.
        case descriptor, descriptors, platform
        /// `[]digest.Digest`, `ocispec.RootFS`.
        case digests, rootFS
    }

    /// A field of a Go struct: its JSON name and type.
    struct Field: Sendable {
        let name: StaticString
        let type: FieldType

        /// Whether `key` is this field's name, byte for byte.
        func isNamed(_ key: UnsafeBufferPointer<UInt8>) -> Bool {
            key.count == name.utf8CodeUnitCount && memcmp(key.baseAddress!, name.utf8Start, key.count) == 0
        }
    }

    /// `v1.Platform`.
    static let platformFields: [Field] = [
        Field(name: "architecture", type: .string), Field(name: "os", type: .string),
        Field(name: "os.version", type: .string), Field(name: "os.features", type: .strings),
        Field(name: "variant", type: .string), Field(name: "features", type: .strings),
    ]

    /// `v1.Descriptor`.
    static let descriptorFields: [Field] = [
        Field(name: "mediaType", type: .string), Field(name: "size", type: .integer),
        Field(name: "digest", type: .digest), Field(name: "data", type: .base64),
        Field(name: "urls", type: .strings), Field(name: "annotations", type: .stringMap),
        Field(name: "platform", type: .platform), Field(name: "artifactType", type: .string),
    ]

    /// `v1.Manifest` and `v1.IndexManifest` together.
    static let documentFields: [Field] = [
        Field(name: "schemaVersion", type: .integer), Field(name: "mediaType", type: .string),
        Field(name: "config", type: .descriptor), Field(name: "layers", type: .descriptors),
        Field(name: "manifests", type: .descriptors), Field(name: "annotations", type: .stringMap),
        Field(name: "subject", type: .descriptor),
    ]

    /// An image config's `rootfs`, and what it holds.
    static let configFields: [Field] = [Field(name: "rootfs", type: .rootFS)]
    static let rootFSFields: [Field] = [Field(name: "type", type: .string), Field(name: "diff_ids", type: .digests)]

    // MARK: - Checking

    private static func check<Node: JSONDocumentNode>(_ node: Node, as type: FieldType) -> Problem? {
        if node.isNull {
            // Go leaves a field it reads null as it was; a digest's own
            // reader refuses it.
            if case .digest = type { return Problem(path: [], what: "null, where a digest belongs") }
            return nil
        }
        switch type {
        case .string:
            return node.isString ? nil : wrongType(node, "a string")
        case .integer:
            guard let fits = node.withNumberUTF8(isInt64) else { return wrongType(node, "an integer") }
            return fits ? nil : Problem(path: [], what: "\(excerpt(node)) is not a 64-bit integer")
        case .digest:
            guard let valid = node.withStringUTF8(Digest.isDigest) else { return wrongType(node, "a digest") }
            return valid
                ? nil
                : Problem(path: [], what: "\(excerpt(node)) is not a digest (sha256:<64 hex> or sha512:<128 hex>)")
        case .base64:
            guard let valid = node.withStringUTF8({ Base64Text.decode($0) != nil }) else {
                return wrongType(node, "base64 text")
            }
            return valid ? nil : Problem(path: [], what: "\(excerpt(node)) is not base64")
        case .strings:
            return eachElement(of: node, "an array of strings") { element in
                element.isString || element.isNull ? nil : wrongType(element, "a string")
            }
        case .stringMap:
            var problem: Problem?
            let isObject = node.forEachMember { key, value in
                guard problem == nil, !value.isString, !value.isNull else { return }
                problem = wrongType(value, "a string").inside(.member(text(of: key)))
            }
            return isObject ? problem : wrongType(node, "an object of strings")
        case .descriptors:
            return eachElement(of: node, "an array") { check($0, as: .descriptor) }
        case .descriptor:
            return checkMembers(of: node, descriptorFields)
        case .platform:
            return checkMembers(of: node, platformFields)
        case .digests:
            return eachElement(of: node, "an array of digests") { check($0, as: .digest) }
        case .rootFS:
            return checkMembers(of: node, rootFSFields)
        }
    }

    /// The first problem of an element of the array `node`.
    private static func eachElement<Node: JSONDocumentNode>(
        of node: Node, _ expected: String, _ problemOf: (Node) -> Problem?
    ) -> Problem? {
        var problem: Problem?
        var place = 0
        let isArray = node.forEachElement { element in
            defer { place += 1 }
            guard problem == nil else { return }
            problem = problemOf(element)?.inside(.element(place))
        }
        return isArray ? problem : wrongType(node, expected)
    }

    /// The first problem of the object `node`, read as a struct of `fields`.
    private static func checkMembers<Node: JSONDocumentNode>(of node: Node, _ fields: [Field]) -> Problem? {
        var problem: Problem?
        var seen: UInt32 = 0
        let isObject = node.forEachMember { key, value in
            guard problem == nil else { return }
            if let place = key.withUTF8({ bytes in fields.firstIndex { $0.isNamed(bytes) } }) {
                // The name is made only for a problem's message.
                guard seen & (1 << place) == 0 else {
                    problem = Problem(
                        path: [.member("\(fields[place].name)")], what: "given twice (Go would merge the two)",
                        goReadsIt: true)
                    return
                }
                seen |= 1 << place
                problem = check(value, as: fields[place].type)?.inside(.member("\(fields[place].name)"))
            } else if let field = key.withUTF8({ bytes in fields.first { goFolds(bytes, to: $0.name) } }) {
                problem = Problem(
                    path: [],
                    what:
                        "the key \(quoted(text(of: key))) is \"\(field.name)\" in other letters, which Go reads as it",
                    goReadsIt: true)
            }
        }
        return isObject ? problem : wrongType(node, "an object")
    }

    // MARK: - Go's rules

    /// Whether a JSON number's text is one Go reads into an `int64`
    /// (`strconv.ParseInt`): digits only, after an optional minus, in range.
    static func isInt64(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = text[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return false }
        // Gathered as a negative number: its range is one larger.
        var value: Int64 = 0
        for byte in digits {
            guard byte &- UInt8(ascii: "0") <= 9 else { return false }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, underflow) = shifted.subtractingReportingOverflow(Int64(byte &- UInt8(ascii: "0")))
            guard !overflow, !underflow else { return false }
            value = next
        }
        return negative || value != Int64.min
    }

    /// Whether Go's `encoding/json` could take the key `bytes` for the
    /// field `name` (ASCII): letters in either case, and the four other
    /// letters its folding makes ASCII ones of (`İ` and `ı` for i, `ſ` for
    /// s, the Kelvin sign for k). Go's own versions fold fewer of these.
    static func goFolds(_ bytes: UnsafeBufferPointer<UInt8>, to name: StaticString) -> Bool {
        let name = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        var at = 0
        for letter in name {
            guard at < bytes.count else { return false }
            let byte = bytes[at]
            let lower = letter | 0x20
            let isLetter = lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")
            if byte < 0x80 {
                guard isLetter ? byte | 0x20 == lower : byte == letter else { return false }
                at += 1
                continue
            }
            let rest = UnsafeBufferPointer(rebasing: bytes[at...])
            let other: [UInt8]
            switch lower {
            case UInt8(ascii: "i") where rest.starts(with: [0xC4, 0xB0]): other = [0xC4, 0xB0]
            case UInt8(ascii: "i") where rest.starts(with: [0xC4, 0xB1]): other = [0xC4, 0xB1]
            case UInt8(ascii: "s") where rest.starts(with: [0xC5, 0xBF]): other = [0xC5, 0xBF]
            case UInt8(ascii: "k") where rest.starts(with: [0xE2, 0x84, 0xAA]): other = [0xE2, 0x84, 0xAA]
            default: return false
            }
            guard isLetter else { return false }
            at += other.count
        }
        return at == bytes.count
    }

    // MARK: - Messages

    private static func wrongType<Node: JSONDocumentNode>(_ node: Node, _ expected: String) -> Problem {
        Problem(path: [], what: "\(kind(of: node)), where \(expected) belongs")
    }

    private static func kind<Node: JSONDocumentNode>(of node: Node) -> String {
        if node.isObject { return "an object" }
        if node.isArray { return "an array" }
        if node.isString { return "a string" }
        if node.numberText != nil { return "a number" }
        return "a boolean"
    }

    /// A value as a message shows it: a string quoted, a number as written,
    /// either cut to its first 80 bytes (a hostile one can be megabytes).
    private static func excerpt<Node: JSONDocumentNode>(_ node: Node) -> String {
        if let string = node.withStringUTF8({ String(decoding: $0.prefix(80), as: UTF8.self) }) {
            return quoted(string)
        }
        return node.withNumberUTF8 { String(decoding: $0.prefix(80), as: UTF8.self) } ?? kind(of: node)
    }

    private static func text(of key: JSONMemberKey) -> String {
        key.withUTF8 { String(decoding: $0.prefix(80), as: UTF8.self) }
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text + "\""
    }
}
