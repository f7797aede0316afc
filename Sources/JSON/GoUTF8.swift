/// UTF-8 as Go reads it (`range` over a string, `utf8.DecodeRune`): each
/// byte of an invalid sequence is one U+FFFD. Swift's decoding makes one
/// U+FFFD of a whole sequence cut short: `\xE2\x82` is one to it and two to
/// Go. Names in answers, names compared without case, and JSON text read
/// as Go's `encoding/json` reads it all follow this one rule.
public enum GoUTF8 {
    /// Calls `body` with each scalar of `bytes`, as Go reads them.
    public static func forEachScalar<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ body: (Unicode.Scalar) -> Void) {
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        while true {
            switch parser.parseScalar(from: &input) {
            case .valid(let encoded): body(Unicode.UTF8.decode(encoded))
            // A cut-short sequence's bytes after the first continue it,
            // so none of them starts a sequence Go would read.
            case .error(let length): for _ in 0..<length { body("\u{FFFD}") }
            case .emptyInput: return
            }
        }
    }

    /// `bytes` with each byte of an invalid sequence made U+FFFD, appended
    /// to `out`.
    public static func appendRepaired<Bytes: Collection<UInt8>>(_ bytes: Bytes, to out: inout [UInt8]) {
        forEachScalar(bytes) { out.append(contentsOf: $0.utf8) }
    }
}
