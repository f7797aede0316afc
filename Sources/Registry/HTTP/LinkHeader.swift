/// Reads a `Link` header (RFC 8288): which target, if any, it names as the
/// next page (`rel="next"`). A registry paginates a referrers listing this
/// way, and a page it names must not be missed, so a header that cannot be
/// read, or that names two different next pages, is an error rather than
/// "no next page".
///
/// ```
/// Link       = #link-value
/// link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
/// link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
/// ```
package enum LinkHeader {
    /// Why a `Link` header could not be read.
    package struct Malformed: Error, Sendable, Equatable {
        package let message: String
    }

    /// The target of the link `value` names with the relation `next` (the
    /// text between `<` and `>`, not resolved), or nil when none does.
    /// Several `Link` fields are read as one, joined with `,`.
    package static func nextTarget(in value: String) throws(Malformed) -> String? {
        var reader = Reader(Array(value.utf8))
        var next: [UInt8]?
        while true {
            reader.skip { $0 == UInt8(ascii: ",") || isSpace($0) }
            guard !reader.atEnd else { return next.map { String(decoding: $0, as: UTF8.self) } }
            let (target, isNext) = try reader.linkValue()
            guard isNext else { continue }
            if let next, next != target { throw Malformed(message: "it names two different next pages") }
            next = target
        }
    }

    fileprivate static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// RFC 9110's `tchar`: the bytes a token is made of.
    fileprivate static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

/// A cursor over the header's bytes.
private struct Reader {
    let bytes: [UInt8]
    var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { at == bytes.count }
    var current: UInt8? { atEnd ? nil : bytes[at] }

    mutating func skip(while matches: (UInt8) -> Bool) {
        while let byte = current, matches(byte) { at += 1 }
    }

    /// One `link-value`: its target, and whether a `rel` of it is `next`.
    mutating func linkValue() throws(LinkHeader.Malformed) -> (target: [UInt8], isNext: Bool) {
        guard current == UInt8(ascii: "<") else { throw malformed("a link does not start with '<'") }
        at += 1
        let start = at
        skip { $0 != UInt8(ascii: ">") }
        guard !atEnd else { throw malformed("a link's '<' is never closed") }
        let target = Array(bytes[start..<at])
        at += 1
        var isNext = false
        var sawRelation = false
        while true {
            skip(while: LinkHeader.isSpace)
            guard current == UInt8(ascii: ";") else { break }
            at += 1
            skip(while: LinkHeader.isSpace)
            let name = token()
            guard !name.isEmpty else { throw malformed("a link parameter has no name") }
            skip(while: LinkHeader.isSpace)
            var value: [UInt8] = []
            if current == UInt8(ascii: "=") {
                at += 1
                skip(while: LinkHeader.isSpace)
                value = current == UInt8(ascii: "\"") ? try quotedString() : token()
            }
            // `rel` is a list of relation types apart by spaces; a second
            // `rel` of a link is ignored (RFC 8288, 3.3).
            if !sawRelation && Self.lowercased(name) == Array("rel".utf8) {
                sawRelation = true
                isNext = value.split(separator: 0x20).contains { Self.lowercased(Array($0)) == Array("next".utf8) }
            }
        }
        guard atEnd || current == UInt8(ascii: ",") else { throw malformed("a link has text after its parameters") }
        return (target, isNext)
    }

    private mutating func token() -> [UInt8] {
        let start = at
        skip(while: LinkHeader.isTokenByte)
        return Array(bytes[start..<at])
    }

    private mutating func quotedString() throws(LinkHeader.Malformed) -> [UInt8] {
        at += 1
        var value: [UInt8] = []
        while let byte = current {
            at += 1
            if byte == UInt8(ascii: "\"") { return value }
            if byte == UInt8(ascii: "\\") {
                guard let escaped = current else { break }
                at += 1
                value.append(escaped)
            } else {
                value.append(byte)
            }
        }
        throw malformed("a quoted link parameter is never closed")
    }

    private func malformed(_ message: String) -> LinkHeader.Malformed { LinkHeader.Malformed(message: message) }

    private static func lowercased(_ bytes: [UInt8]) -> [UInt8] {
        bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    }
}
