/// Where libyaml 0.2.5, which parses here, and go-yaml v2, which the
/// original's converter reads files with, read the same characters
/// otherwise outside flow collections (`FlowScanCheck` has those), and
/// where reading a JSON file as JSON is not reading it as go-yaml does.
///
/// - In a double-quoted scalar, `\/` is `/` to libyaml (YAML 1.2) and an
///   unknown escape to go-yaml, so the original leaves such a file out;
///   `\'` is the reverse.
/// - `%YAML 1.2` is accepted by libyaml and "incompatible" to go-yaml.
/// - A byte-order mark at the start of a line, after the first: libyaml
///   skips it where a token may start, go-yaml reads it as a character
///   (`a: 1\n\u{FEFF}b: 2` is `{"a":1,"\u{FEFF}b":2}` to go-yaml and
///   an error to libyaml; `a: 1\n\u{FEFF}` is the reverse).
/// - A JSON text with `\/`, an escaped surrogate (`\uD83D\uDE00`), or a
///   character YAML does not print (DEL, U+0080-U+009F but NEL, U+FFFE,
///   U+FFFF) fails in go-yaml, and a NEL in a string is a line break
///   there, folded to a space.
///
/// Where go-yaml fails and libyaml reads, the file fails as it does in
/// the original (left out); where go-yaml reads what libyaml cannot read
/// alike, the document is refused as ambiguous, failing the call.
enum CharacterCheck {
    /// Whether go-yaml reads the valid JSON `text` as JSON reads it: no
    /// escape or character it reads otherwise (above), no key YAML takes
    /// for another kind of node (one that ends on another line than it
    /// began, or more than 1,024 characters after it: go-yaml then reads
    /// a `:` with no key before it), and no tab where YAML takes it for
    /// indentation (before the text, or on a line after it). When it does
    /// not, the text is read as YAML, as the original reads every file.
    /// libyaml refuses the same keys and tabs
    /// (`jsonTheCheckPassesIsJSONLibyamlReads`).
    static func jsonIsReadAlike(_ text: [UInt8]) -> Bool {
        text.withUnsafeBufferPointer { bytes in
            func isSpace(_ byte: UInt8) -> Bool {
                byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
            }
            var place = 0
            while place < bytes.count && isSpace(bytes[place]) {
                if bytes[place] == 0x09 { return false }
                place += 1
            }
            var end = bytes.count
            while end > place && isSpace(bytes[end - 1]) { end -= 1 }
            var lineBroken = false
            for byte in bytes[end...] {
                if byte == 0x0A || byte == 0x0D { lineBroken = true }
                if byte == 0x09 && lineBroken { return false }
            }
            // Characters before `place`: libyaml's marks count characters.
            var characters = place
            while place < end {
                guard bytes[place] == UInt8(ascii: "\"") else {
                    // Outside strings, valid JSON is ASCII.
                    place += 1
                    characters += 1
                    continue
                }
                let opening = characters
                var brokenLine = false
                place += 1
                characters += 1
                while place < end && bytes[place] != UInt8(ascii: "\"") {
                    let byte = bytes[place]
                    let next = place + 1 < end ? bytes[place + 1] : 0
                    let third = place + 2 < end ? bytes[place + 2] : 0
                    switch byte {
                    case UInt8(ascii: "\\"):
                        // Every backslash in valid JSON begins an escape.
                        if next == UInt8(ascii: "/") { return false }
                        if next == UInt8(ascii: "u"), third | 0x20 == UInt8(ascii: "d"), place + 3 < end,
                            Self.hexValue(bytes[place + 3]).map({ $0 >= 8 }) == true
                        {
                            return false
                        }
                        place += 2
                        characters += 2
                        continue
                    case 0x7F: return false
                    case 0xC2 where next >= 0x80 && next <= 0x9F: return false
                    case 0xEF where next == 0xBF && third >= 0xBE: return false
                    case 0xE2 where next == 0x80 && (third == 0xA8 || third == 0xA9): brokenLine = true
                    default: break
                    }
                    if byte & 0xC0 != 0x80 { characters += 1 }
                    place += 1
                }
                place += 1
                characters += 1
                // A key: what follows, past blanks, is its `:`.
                var after = place
                while after < end && isSpace(bytes[after]) {
                    if bytes[after] == 0x0A || bytes[after] == 0x0D { brokenLine = true }
                    after += 1
                }
                if after < end && bytes[after] == UInt8(ascii: ":")
                    && (brokenLine || characters + (after - place) - opening > 1_024)
                {
                    return false
                }
            }
            return true
        }
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Whether a byte-order mark starts a line of `text` after its first
    /// character (a line break before it: LF, CR, NEL, LS or PS).
    static func byteOrderMarkStartsALine(in text: YAMLText) -> Bool {
        let bytes = text.bytes
        var place = 1
        while place + 2 < bytes.count {
            defer { place += 1 }
            guard bytes[place] == 0xEF, bytes[place + 1] == 0xBB, bytes[place + 2] == 0xBF else { continue }
            let before = bytes[..<place]
            if before.last == UInt8(ascii: "\n") || before.last == UInt8(ascii: "\r")
                || before.suffix(2) == [0xC2, 0x85]
                || before.suffix(3) == [0xE2, 0x80, 0xA8] || before.suffix(3) == [0xE2, 0x80, 0xA9]
            {
                return true
            }
        }
        return false
    }

    /// Whether the text has `\/` anywhere: only then can a double-quoted
    /// scalar hold that escape.
    static func mayHoldSlashEscape(_ text: YAMLText) -> Bool {
        text.bytes.withUnsafeBufferPointer { bytes in
            bytes.indices.dropLast().contains { bytes[$0] == UInt8(ascii: "\\") && bytes[$0 + 1] == UInt8(ascii: "/") }
        }
    }

    /// Whether the double-quoted scalar written in `scalar` (its quotes
    /// included) escapes a `/`.
    static func escapesASlash(_ scalar: ArraySlice<UInt8>) -> Bool {
        var place = scalar.startIndex + 1
        while place + 1 < scalar.endIndex {
            if scalar[place] == UInt8(ascii: "\\") {
                if scalar[place + 1] == UInt8(ascii: "/") { return true }
                place += 2
            } else {
                place += 1
            }
        }
        return false
    }

    /// Whether the escape libyaml did not know, whose backslash is the
    /// character at `index`, is `\'`, which go-yaml reads as `'`.
    static func isAnEscapeGoYAMLReads(at index: Int, in text: YAMLText) -> Bool {
        var places = YAMLText.Places()
        let offset = places.byteOffset(ofCharacter: index, in: text)
        return text.bytes.dropFirst(offset).starts(with: Array(#"\'"#.utf8))
    }
}
