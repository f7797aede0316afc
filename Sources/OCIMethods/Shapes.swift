import FoundationEssentials
import Glibc
import JSON

/// The JSON shapes the builtins return, built from registry documents:
/// descriptors with every key present, manifests, indexes and referrers.
///
/// Each is written straight as compact text (`JSONValue.encoded`): the
/// caches keep an answer as that text and messages copy it as it is, so no
/// tree of values is built for an answer, nor written out again per message.
enum Shapes {
    /// A descriptor object: `mediaType`, `size`, `digest`, `data` (decoded
    /// text), `urls`, `annotations`, `artifactType` always; `platform` only
    /// when the descriptor has one.
    static func descriptor(_ source: JSONValue?) -> JSONValue {
        encoded { writeDescriptor(source, into: &$0) }
    }

    /// `{schemaVersion, mediaType, config, layers, annotations}` plus `subject`.
    static func manifest(_ document: JSONValue) -> JSONValue {
        encoded { out in
            writeHead(document, into: &out)
            raw(#","config":"#, &out)
            writeDescriptor(document["config"], into: &out)
            raw(#","layers":"#, &out)
            writeDescriptors(document["layers"], into: &out)
            writeTail(document, into: &out)
        }
    }

    /// `{schemaVersion, mediaType, manifests, annotations}` plus `subject`.
    static func index(_ document: JSONValue) -> JSONValue {
        encoded { out in
            writeHead(document, into: &out)
            raw(#","manifests":"#, &out)
            writeDescriptors(document["manifests"], into: &out)
            writeTail(document, into: &out)
        }
    }

    /// `{mediaType, size, digest, artifactType, ref, annotations}`, `ref`
    /// being `registry/repository@digest`.
    static func referrer(_ source: JSONValue, repository name: String) -> JSONValue {
        let d = source.objectValue ?? JSONObject()
        let digest = d["digest"]?.stringValue ?? ""
        return encoded { out in
            raw(#"{"mediaType":"#, &out)
            string(d["mediaType"]?.stringValue, &out)
            raw(#","size":"#, &out)
            number(d["size"]?.numberText, &out)
            raw(#","digest":"#, &out)
            string(digest, &out)
            raw(#","artifactType":"#, &out)
            string(d["artifactType"]?.stringValue, &out)
            raw(#","ref":"#, &out)
            string("\(name)@\(digest)", &out)
            raw(#","annotations":"#, &out)
            writeStringMap(d["annotations"], into: &out)
            raw("}", &out)
        }
    }

    // MARK: - Writing

    private static func encoded(_ write: (inout OutputBytes) -> Void) -> JSONValue {
        .encoded(EncodedJSON(writing: write))
    }

    private static func writeDescriptor(_ source: JSONValue?, into out: inout OutputBytes) {
        // One pass over the members; a later member of a key replaces an
        // earlier one, as a lookup sees the last.
        var mediaType, size, digest, data, urls, annotations, artifactType, platform: JSONValue?
        for member in source?.objectValue?.members ?? [] {
            switch member.key {
            case "mediaType": mediaType = member.value
            case "size": size = member.value
            case "digest": digest = member.value
            case "data": data = member.value
            case "urls": urls = member.value
            case "annotations": annotations = member.value
            case "artifactType": artifactType = member.value
            case "platform": platform = member.value
            default: break
            }
        }
        raw(#"{"mediaType":"#, &out)
        string(mediaType?.stringValue, &out)
        raw(#","size":"#, &out)
        number(size?.numberText, &out)
        raw(#","digest":"#, &out)
        string(digest?.stringValue, &out)
        raw(#","data":"#, &out)
        string(decodedData(data?.stringValue), &out)
        raw(#","urls":"#, &out)
        writeStringArray(urls, into: &out)
        raw(#","annotations":"#, &out)
        writeStringMap(annotations, into: &out)
        raw(#","artifactType":"#, &out)
        string(artifactType?.stringValue, &out)
        if let platform = platform?.objectValue {
            raw(#","platform":{"architecture":"#, &out)
            string(platform["architecture"]?.stringValue, &out)
            raw(#","os":"#, &out)
            string(platform["os"]?.stringValue, &out)
            raw(#","os.version":"#, &out)
            string(platform["os.version"]?.stringValue, &out)
            raw(#","os.features":"#, &out)
            writeStringArray(platform["os.features"], into: &out)
            raw(#","variant":"#, &out)
            string(platform["variant"]?.stringValue, &out)
            raw(#","features":"#, &out)
            writeStringArray(platform["features"], into: &out)
            raw("}", &out)
        }
        raw("}", &out)
    }

    /// A descriptor for each element of `array` (none when it is not one).
    private static func writeDescriptors(_ array: JSONValue?, into out: inout OutputBytes) {
        raw("[", &out)
        for (place, element) in (array?.arrayValue ?? []).enumerated() {
            if place > 0 { raw(",", &out) }
            writeDescriptor(element, into: &out)
        }
        raw("]", &out)
    }

    /// `{"schemaVersion":..,"mediaType":..` of a manifest or an index.
    private static func writeHead(_ document: JSONValue, into out: inout OutputBytes) {
        raw(#"{"schemaVersion":"#, &out)
        number(document["schemaVersion"]?.numberText, &out)
        raw(#","mediaType":"#, &out)
        string(document["mediaType"]?.stringValue, &out)
    }

    /// `,"annotations":..` and the `subject` a document has, and the end.
    private static func writeTail(_ document: JSONValue, into out: inout OutputBytes) {
        raw(#","annotations":"#, &out)
        writeStringMap(document["annotations"], into: &out)
        if let subject = document["subject"], subject.objectValue != nil {
            raw(#","subject":"#, &out)
            writeDescriptor(subject, into: &out)
        }
        raw("}", &out)
    }

    /// The string members of an object, each key once: where it first
    /// came, with the last string it was given (a key's later members
    /// replace its value, as a lookup sees the last).
    private static func writeStringMap(_ value: JSONValue?, into out: inout OutputBytes) {
        let members = value?.objectValue?.members ?? []
        // Mostly each key comes once: then the members are written as they are.
        if members.count <= 16 && !hasRepeatedKey(members) {
            raw("{", &out)
            var first = true
            for member in members {
                guard let text = member.value.stringValue else { continue }
                if !first { raw(",", &out) }
                first = false
                JSONWriter.writeString(member.key, into: &out)
                raw(":", &out)
                JSONWriter.writeString(text, into: &out)
            }
            raw("}", &out)
            return
        }
        var entries: [(key: String, value: String)] = []
        entries.reserveCapacity(members.count)
        // Large maps find a repeated key by hashing: a hostile manifest
        // of a million annotations must not cost a scan per member.
        var places: [String: Int]? = members.count > 16 ? Dictionary(minimumCapacity: members.count) : nil
        for member in members {
            guard let text = member.value.stringValue else { continue }
            let place =
                places != nil ? places![member.key] : entries.firstIndex { $0.key == member.key }
            if let place {
                entries[place].value = text
            } else {
                places?[member.key] = entries.count
                entries.append((member.key, text))
            }
        }
        raw("{", &out)
        for (place, entry) in entries.enumerated() {
            if place > 0 { raw(",", &out) }
            JSONWriter.writeString(entry.key, into: &out)
            raw(":", &out)
            JSONWriter.writeString(entry.value, into: &out)
        }
        raw("}", &out)
    }

    /// Whether a key comes twice among a few members.
    private static func hasRepeatedKey(_ members: [JSONObject.Member]) -> Bool {
        for later in members.indices.dropFirst() {
            for earlier in 0..<later where members[earlier].key == members[later].key { return true }
        }
        return false
    }

    /// The string elements of an array (none when it is not one).
    private static func writeStringArray(_ value: JSONValue?, into out: inout OutputBytes) {
        raw("[", &out)
        var first = true
        for element in value?.arrayValue ?? [] {
            guard let text = element.stringValue else { continue }
            if !first { raw(",", &out) }
            first = false
            JSONWriter.writeString(text, into: &out)
        }
        raw("]", &out)
    }

    /// A string, `""` for none.
    private static func string(_ text: String?, _ out: inout OutputBytes) {
        JSONWriter.writeString(text ?? "", into: &out)
    }

    /// A number's text, `0` for none.
    private static func number(_ text: String?, _ out: inout OutputBytes) {
        JSONWriter.write(.number(text ?? "0"), into: &out)
    }

    private static func raw(_ text: StaticString, _ out: inout OutputBytes) {
        out.append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private static func decodedData(_ base64: String?) -> String {
        guard let base64, !base64.isEmpty, let data = Data(base64Encoded: base64) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
