import FoundationEssentials
import Glibc
import JSON

/// The JSON shapes the builtins return, built from registry documents:
/// descriptors with every key present, manifests, indexes and referrers.
///
/// Each is written straight as compact text (`JSONValue.encoded`): the
/// caches keep an answer as that text and messages copy it as it is, so no
/// tree of values is built for an answer, nor written out again per message.
/// A document is read through `JSONDocumentNode`: a parsed `JSONValue`, or
/// a manifest's own bytes on a `JSONTape`, with the same answer either way.
package enum Shapes {
    /// An answer is at most this (four times the largest manifest). Every
    /// descriptor is written with all its keys, about 90 bytes however
    /// little it held, so 4 MiB of `{}` in a manifest's `layers` would make
    /// an answer of 126 MiB, and eight at once a gigabyte.
    package static let maxAnswerBytes = 16 << 20

    /// The most an answer shaped from a document of `textBytes` can be:
    /// `maxAnswerBytes`, or less for a short document. The most a text makes
    /// is an empty descriptor (92 bytes) for each element of a
    /// descriptors' array of one-byte values (`[0,0,...]`: two bytes an
    /// element), so 48 bytes a byte, and the head and tail of the answer.
    package static func maxAnswerBytes(forText textBytes: Int) -> Int {
        let (perByte, overflow) = textBytes.multipliedReportingOverflow(by: 48)
        return overflow || perByte >= maxAnswerBytes ? maxAnswerBytes : min(maxAnswerBytes, perByte + 1024)
    }

    /// An answer that would be over `maxAnswerBytes`: writing it stops
    /// there (`ErrorMapping` makes it `manifest_too_large` with the ref).
    package struct AnswerTooLarge: Error {}

    /// A descriptor object: `mediaType`, `size`, `digest`, `data` (decoded
    /// text), `urls`, `annotations`, `artifactType` always; `platform` only
    /// when the descriptor has one.
    static func descriptor(_ source: JSONValue?) -> JSONValue {
        .encoded(EncodedJSON(writing: { writeDescriptor(source, into: &$0) }))
    }

    /// `{schemaVersion, mediaType, config, layers, annotations}` plus `subject`.
    package static func manifest<Document: JSONDocumentNode>(
        _ document: Document
    ) throws(AnswerTooLarge) -> JSONValue {
        try encoded { out in
            writeHead(document, into: &out)
            out.append(#","config":"#)
            writeDescriptor(document.member("config"), into: &out)
            out.append(#","layers":"#)
            writeDescriptors(document.member("layers"), into: &out)
            writeTail(document, into: &out)
        }
    }

    /// `{schemaVersion, mediaType, manifests, annotations}` plus `subject`.
    package static func index<Document: JSONDocumentNode>(_ document: Document) throws(AnswerTooLarge) -> JSONValue {
        try encoded { out in
            writeHead(document, into: &out)
            out.append(#","manifests":"#)
            writeDescriptors(document.member("manifests"), into: &out)
            writeTail(document, into: &out)
        }
    }

    /// The referrers answer: for each descriptor of an index's
    /// `manifests`, `{mediaType, size, digest, artifactType, ref,
    /// annotations}`, `ref` being `registry/repository@digest`.
    package static func referrers<Index: JSONDocumentNode>(
        _ index: Index, repository name: String
    ) throws(AnswerTooLarge) -> JSONValue {
        try referrers(pages: 1, repository: name) { _, write in write(index) }
    }

    /// The referrers answer of a listing in `count` pages: the referrers
    /// of each page in order, in one array. `page(number, write)` calls
    /// `write` with the index of page `number` (from 0).
    package static func referrers<Index: JSONDocumentNode>(
        pages count: Int, repository name: String, page: (Int, (Index) -> Void) -> Void
    ) throws(AnswerTooLarge) -> JSONValue {
        try encoded { out in
            out.append("[")
            var first = true
            for number in 0..<count {
                page(number) { index in
                    _ = index.member("manifests")?.forEachElement { source in
                        guard !out.overflowed else { return }
                        if !first { out.append(",") }
                        first = false
                        writeReferrer(source, repository: name, into: &out)
                    }
                }
            }
            out.append("]")
        }
    }

    /// The most a referrers answer shaped from an index of `textBytes` can
    /// be: each element (two bytes at least) an empty referrer of 96 bytes
    /// and the repository's name, strings no longer than their text (the
    /// digest written twice), and the brackets.
    package static func maxReferrersBytes(forText textBytes: Int, repository name: String) -> Int {
        let (elements, perElement) = (textBytes / 2 + 1, 96 + name.utf8.count)
        let (fixed, overflow) = elements.multipliedReportingOverflow(by: perElement)
        let (strings, stringsOverflow) = textBytes.multipliedReportingOverflow(by: 2)
        guard !overflow, !stringsOverflow, fixed <= maxAnswerBytes, strings <= maxAnswerBytes else {
            return maxAnswerBytes
        }
        return min(maxAnswerBytes, fixed + strings + 1024)
    }

    private static func writeReferrer<Node: JSONDocumentNode>(
        _ source: Node, repository name: String, into out: inout OutputBytes
    ) {
        let digest = source.member("digest")?.stringText ?? ""
        out.append(#"{"mediaType":"#)
        string(source.member("mediaType"), &out)
        out.append(#","size":"#)
        number(source.member("size"), &out)
        out.append(#","digest":"#)
        string(digest, &out)
        out.append(#","artifactType":"#)
        string(source.member("artifactType"), &out)
        out.append(#","ref":"#)
        string("\(name)@\(digest)", &out)
        out.append(#","annotations":"#)
        writeStringMap(source.member("annotations"), into: &out)
        out.append("}")
    }

    // MARK: - Writing

    /// The text `write` writes, refused when it would be over
    /// `maxAnswerBytes`: its buffer never grows past that, and the writers
    /// stop adding elements once it is reached.
    private static func encoded(_ write: (inout OutputBytes) -> Void) throws(AnswerTooLarge) -> JSONValue {
        guard let text = EncodedJSON(writing: write, limit: maxAnswerBytes) else { throw AnswerTooLarge() }
        return .encoded(text)
    }

    private static func writeDescriptor<Node: JSONDocumentNode>(_ source: Node?, into out: inout OutputBytes) {
        // One pass over the members; a later member of a key replaces an
        // earlier one, as a lookup sees the last.
        var mediaType, size, digest, data, urls, annotations, artifactType, platform: Node?
        _ = source?.forEachMember { key, value in
            if key.is("mediaType") {
                mediaType = value
            } else if key.is("size") {
                size = value
            } else if key.is("digest") {
                digest = value
            } else if key.is("data") {
                data = value
            } else if key.is("urls") {
                urls = value
            } else if key.is("annotations") {
                annotations = value
            } else if key.is("artifactType") {
                artifactType = value
            } else if key.is("platform") {
                platform = value
            }
        }
        out.append(#"{"mediaType":"#)
        string(mediaType, &out)
        out.append(#","size":"#)
        number(size, &out)
        out.append(#","digest":"#)
        string(digest, &out)
        out.append(#","data":"#)
        string(decodedData(data), &out)
        out.append(#","urls":"#)
        writeStringArray(urls, into: &out)
        out.append(#","annotations":"#)
        writeStringMap(annotations, into: &out)
        out.append(#","artifactType":"#)
        string(artifactType, &out)
        if let platform, platform.isObject {
            out.append(#","platform":{"architecture":"#)
            string(platform.member("architecture"), &out)
            out.append(#","os":"#)
            string(platform.member("os"), &out)
            out.append(#","os.version":"#)
            string(platform.member("os.version"), &out)
            out.append(#","os.features":"#)
            writeStringArray(platform.member("os.features"), into: &out)
            out.append(#","variant":"#)
            string(platform.member("variant"), &out)
            out.append(#","features":"#)
            writeStringArray(platform.member("features"), into: &out)
            out.append("}")
        }
        out.append("}")
    }

    /// A descriptor for each element of `array` (none when it is not one).
    private static func writeDescriptors<Node: JSONDocumentNode>(_ array: Node?, into out: inout OutputBytes) {
        out.append("[")
        var first = true
        _ = array?.forEachElement { element in
            guard !out.overflowed else { return }
            if !first { out.append(",") }
            first = false
            writeDescriptor(element, into: &out)
        }
        out.append("]")
    }

    /// `{"schemaVersion":..,"mediaType":..` of a manifest or an index.
    private static func writeHead<Document: JSONDocumentNode>(_ document: Document, into out: inout OutputBytes) {
        out.append(#"{"schemaVersion":"#)
        number(document.member("schemaVersion"), &out)
        out.append(#","mediaType":"#)
        string(document.member("mediaType"), &out)
    }

    /// `,"annotations":..` and the `subject` a document has, and the end.
    private static func writeTail<Document: JSONDocumentNode>(_ document: Document, into out: inout OutputBytes) {
        out.append(#","annotations":"#)
        writeStringMap(document.member("annotations"), into: &out)
        if let subject = document.member("subject"), subject.isObject {
            out.append(#","subject":"#)
            writeDescriptor(subject, into: &out)
        }
        out.append("}")
    }

    /// The string members of an object, each key once: where it first
    /// came, with the last string it was given (a key's later members
    /// replace its value, as a lookup sees the last). Keys are told apart
    /// by their bytes. A `null` member is `""`, as Go reads it into a
    /// `map[string]string`.
    private static func writeStringMap<Node: JSONDocumentNode>(_ value: Node?, into out: inout OutputBytes) {
        var entries: [(key: JSONMemberKey, value: Node)] = []
        _ = value?.forEachMember { key, value in
            if value.isString || value.isNull { entries.append((key, value)) }
        }
        // Mostly each key comes once: then the members are written as they are.
        if entries.count > 16 || hasRepeatedKey(entries) {
            entries = lastValueOfEachKey(entries)
        }
        out.append("{")
        for (place, entry) in entries.enumerated() {
            guard !out.overflowed else { break }
            if place > 0 { out.append(",") }
            entry.key.write(into: &out)
            out.append(":")
            string(entry.value, &out)
        }
        out.append("}")
    }

    /// Each key once, where it first came, with its last value. Large maps
    /// find a repeated key by hashing: a hostile manifest of a million
    /// annotations must not cost a scan per member.
    private static func lastValueOfEachKey<Node>(
        _ entries: [(key: JSONMemberKey, value: Node)]
    ) -> [(key: JSONMemberKey, value: Node)] {
        var kept: [(key: JSONMemberKey, value: Node)] = []
        kept.reserveCapacity(entries.count)
        var places: [JSONMemberKey: Int]? = entries.count > 16 ? Dictionary(minimumCapacity: entries.count) : nil
        for entry in entries {
            let place = places != nil ? places![entry.key] : kept.firstIndex { $0.key == entry.key }
            if let place {
                kept[place].value = entry.value
            } else {
                places?[entry.key] = kept.count
                kept.append(entry)
            }
        }
        return kept
    }

    /// Whether a key comes twice among a few members.
    private static func hasRepeatedKey<Node>(_ entries: [(key: JSONMemberKey, value: Node)]) -> Bool {
        for later in entries.indices.dropFirst() {
            for earlier in 0..<later where entries[earlier].key == entries[later].key { return true }
        }
        return false
    }

    /// The string elements of an array (none when it is not one), a
    /// `null` one as `""` (as Go reads it into a `[]string`).
    private static func writeStringArray<Node: JSONDocumentNode>(_ value: Node?, into out: inout OutputBytes) {
        out.append("[")
        var first = true
        _ = value?.forEachElement { element in
            guard element.isString || element.isNull, !out.overflowed else { return }
            if !first { out.append(",") }
            first = false
            string(element, &out)
        }
        out.append("]")
    }

    /// A string, `""` for none or another kind of value.
    private static func string<Node: JSONDocumentNode>(_ node: Node?, _ out: inout OutputBytes) {
        if let node, node.writeString(into: &out) { return }
        out.append(#""""#)
    }

    /// A string, `""` for none.
    private static func string(_ text: String?, _ out: inout OutputBytes) {
        JSONWriter.writeString(text ?? "", into: &out)
    }

    /// A number's text, `0` for none or another kind of value. `-0` is
    /// `0`, as Go writes the integer it reads (`%d`).
    private static func number<Node: JSONDocumentNode>(_ node: Node?, _ out: inout OutputBytes) {
        let negativeZero = node?.withNumberUTF8 {
            $0.count == 2 && $0[0] == UInt8(ascii: "-") && $0[1] == UInt8(ascii: "0")
        }
        if negativeZero != true, let node, node.writeNumber(into: &out) { return }
        out.append("0")
    }

    /// A number's text, `0` for none.
    private static func number(_ text: String?, _ out: inout OutputBytes) {
        JSONWriter.write(.number(text ?? "0"), into: &out)
    }

    /// A descriptor's `data`, decoded as Go decodes it (`Base64Text`), as
    /// text; `""` for none or text that is not base64.
    private static func decodedData<Node: JSONDocumentNode>(_ node: Node?) -> String {
        guard let data = node?.withStringUTF8(Base64Text.decode) ?? nil else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
