/// A document's characters as libyaml reads them, in UTF-8, and the bytes
/// its marks name.
///
/// libyaml reads UTF-16 when the document starts with its byte-order mark,
/// else UTF-8, and drops the mark. A mark's `index` then counts characters
/// from the first after it, not bytes: read as a byte offset into the
/// document, a check for what a scanner does at a mark looked at other
/// bytes once a character of several bytes (`é`, or the mark) came before
/// it, so `é: [x?y]` escaped `FlowScanCheck`.
struct YAMLText {
    /// The characters, in UTF-8, without the byte-order mark.
    let bytes: [UInt8]

    init(_ document: [UInt8]) {
        switch (document.first, document.dropFirst().first) {
        case (0xFF, 0xFE): bytes = Self.utf8(ofUTF16: document.dropFirst(2), bigEndian: false)
        case (0xFE, 0xFF): bytes = Self.utf8(ofUTF16: document.dropFirst(2), bigEndian: true)
        default:
            let marked = document.starts(with: [0xEF, 0xBB, 0xBF])
            bytes = marked ? Array(document.dropFirst(3)) : document
        }
    }

    /// UTF-16 text as UTF-8, transcoded straight into the bytes kept (at
    /// most one and a half times the text); a unit that is not UTF-16 is
    /// U+FFFD (libyaml refuses such a document anyway).
    private static func utf8(ofUTF16 bytes: ArraySlice<UInt8>, bigEndian: Bool) -> [UInt8] {
        let units = stride(from: bytes.startIndex, to: bytes.endIndex - 1, by: 2).lazy.map { place in
            let (first, second) = (UInt16(bytes[place]), UInt16(bytes[place + 1]))
            return bigEndian ? first << 8 | second : second << 8 | first
        }
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count + bytes.count / 2)
        _ = transcode(units.makeIterator(), from: UTF16.self, to: UTF8.self, stoppingOnError: false) {
            text.append($0)
        }
        return text
    }

    /// The byte a mark's `index` names, found by walking from the place
    /// last asked for: marks asked for in order (tokens, events; a simple
    /// key's token steps back over its key) cost about one walk over the
    /// text, never one each.
    struct Places {
        private var character = 0
        private var byte = 0

        init() {}

        /// The offset in `text` of character `index` (`text.bytes.count`
        /// past the last).
        mutating func byteOffset(ofCharacter index: Int, in text: YAMLText) -> Int {
            let bytes = text.bytes
            // Continuation bytes (10xxxxxx) belong to the character before.
            while character > index && byte > 0 {
                byte -= 1
                while byte > 0 && bytes[byte] & 0xC0 == 0x80 { byte -= 1 }
                character -= 1
            }
            while character < index && byte < bytes.count {
                byte += 1
                while byte < bytes.count && bytes[byte] & 0xC0 == 0x80 { byte += 1 }
                character += 1
            }
            return byte
        }
    }
}
