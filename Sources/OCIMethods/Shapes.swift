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
            out.append(#","config":"#)
            writeDescriptor(document["config"], into: &out)
            out.append(#","layers":"#)
            writeDescriptors(document["layers"], into: &out)
            writeTail(document, into: &out)
        }
    }

    /// `{schemaVersion, mediaType, manifests, annotations}` plus `subject`.
    static func index(_ document: JSONValue) -> JSONValue {
        encoded { out in
            writeHead(document, into: &out)
            out.append(#","manifests":"#)
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
            out.append(#"{"mediaType":"#)
            string(d["mediaType"]?.stringValue, &out)
            out.append(#","size":"#)
            number(d["size"]?.numberText, &out)
            out.append(#","digest":"#)
            string(digest, &out)
            out.append(#","artifactType":"#)
            string(d["artifactType"]?.stringValue, &out)
            out.append(#","ref":"#)
            string("\(name)@\(digest)", &out)
            out.append(#","annotations":"#)
            writeStringMap(d["annotations"], into: &out)
            out.append("}")
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
        out.append(#"{"mediaType":"#)
        string(mediaType?.stringValue, &out)
        out.append(#","size":"#)
        number(size?.numberText, &out)
        out.append(#","digest":"#)
        string(digest?.stringValue, &out)
        out.append(#","data":"#)
        string(decodedData(data?.stringValue), &out)
        out.append(#","urls":"#)
        writeStringArray(urls, into: &out)
        out.append(#","annotations":"#)
        writeStringMap(annotations, into: &out)
        out.append(#","artifactType":"#)
        string(artifactType?.stringValue, &out)
        if let platform = platform?.objectValue {
            out.append(#","platform":{"architecture":"#)
            string(platform["architecture"]?.stringValue, &out)
            out.append(#","os":"#)
            string(platform["os"]?.stringValue, &out)
            out.append(#","os.version":"#)
            string(platform["os.version"]?.stringValue, &out)
            out.append(#","os.features":"#)
            writeStringArray(platform["os.features"], into: &out)
            out.append(#","variant":"#)
            string(platform["variant"]?.stringValue, &out)
            out.append(#","features":"#)
            writeStringArray(platform["features"], into: &out)
            out.append("}")
        }
        out.append("}")
    }

    /// A descriptor for each element of `array` (none when it is not one).
    private static func writeDescriptors(_ array: JSONValue?, into out: inout OutputBytes) {
        out.append("[")
        for (place, element) in (array?.arrayValue ?? []).enumerated() {
            if place > 0 { out.append(",") }
            writeDescriptor(element, into: &out)
        }
        out.append("]")
    }

    /// `{"schemaVersion":..,"mediaType":..` of a manifest or an index.
    private static func writeHead(_ document: JSONValue, into out: inout OutputBytes) {
        out.append(#"{"schemaVersion":"#)
        number(document["schemaVersion"]?.numberText, &out)
        out.append(#","mediaType":"#)
        string(document["mediaType"]?.stringValue, &out)
    }

    /// `,"annotations":..` and the `subject` a document has, and the end.
    private static func writeTail(_ document: JSONValue, into out: inout OutputBytes) {
        out.append(#","annotations":"#)
        writeStringMap(document["annotations"], into: &out)
        if let subject = document["subject"], subject.objectValue != nil {
            out.append(#","subject":"#)
            writeDescriptor(subject, into: &out)
        }
        out.append("}")
    }

    /// The string members of an object, each key once: where it first
    /// came, with the last string it was given (a key's later members
    /// replace its value, as a lookup sees the last).
    private static func writeStringMap(_ value: JSONValue?, into out: inout OutputBytes) {
        let members = value?.objectValue?.members ?? []
        // Mostly each key comes once: then the members are written as they are.
        if members.count <= 16 && !hasRepeatedKey(members) {
            out.append("{")
            var first = true
            for member in members {
                guard let text = member.value.stringValue else { continue }
                if !first { out.append(",") }
                first = false
                JSONWriter.writeString(member.key, into: &out)
                out.append(":")
                JSONWriter.writeString(text, into: &out)
            }
            out.append("}")
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
        out.append("{")
        for (place, entry) in entries.enumerated() {
            if place > 0 { out.append(",") }
            JSONWriter.writeString(entry.key, into: &out)
            out.append(":")
            JSONWriter.writeString(entry.value, into: &out)
        }
        out.append("}")
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
        out.append("[")
        var first = true
        for element in value?.arrayValue ?? [] {
            guard let text = element.stringValue else { continue }
            if !first { out.append(",") }
            first = false
            JSONWriter.writeString(text, into: &out)
        }
        out.append("]")
    }

    /// A string, `""` for none.
    private static func string(_ text: String?, _ out: inout OutputBytes) {
        JSONWriter.writeString(text ?? "", into: &out)
    }

    /// A number's text, `0` for none.
    private static func number(_ text: String?, _ out: inout OutputBytes) {
        JSONWriter.write(.number(text ?? "0"), into: &out)
    }

    private static func decodedData(_ base64: String?) -> String {
        guard let base64, !base64.isEmpty, let data = Data(base64Encoded: base64) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
