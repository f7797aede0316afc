import FoundationEssentials
import Glibc
import JSON

/// The JSON shapes the builtins return, built from registry documents:
/// descriptors with every key present, manifests, indexes and referrers.
enum Shapes {
    /// A descriptor object: `mediaType`, `size`, `digest`, `data` (decoded
    /// text), `urls`, `annotations`, `artifactType` always; `platform` only
    /// when the descriptor has one.
    static func descriptor(_ source: JSONValue?) -> JSONValue {
        let d = source?.objectValue ?? JSONObject()
        var object = JSONObject(capacity: 8)
        object.append("mediaType", .string(d["mediaType"]?.stringValue ?? ""))
        object.append("size", d["size"].flatMap { $0.numberText.map(JSONValue.number) } ?? 0)
        object.append("digest", .string(d["digest"]?.stringValue ?? ""))
        object.append("data", .string(decodedData(d["data"]?.stringValue)))
        object.append("urls", .array((d["urls"]?.arrayValue ?? []).compactMap { $0.stringValue.map(JSONValue.string) }))
        object.append("annotations", stringMap(d["annotations"]))
        object.append("artifactType", .string(d["artifactType"]?.stringValue ?? ""))
        if let platform = d["platform"]?.objectValue {
            var p = JSONObject(capacity: 6)
            p.append("architecture", .string(platform["architecture"]?.stringValue ?? ""))
            p.append("os", .string(platform["os"]?.stringValue ?? ""))
            p.append("os.version", .string(platform["os.version"]?.stringValue ?? ""))
            p.append("os.features", stringArray(platform["os.features"]))
            p.append("variant", .string(platform["variant"]?.stringValue ?? ""))
            p.append("features", stringArray(platform["features"]))
            object.append("platform", .object(p))
        }
        return .object(object)
    }

    /// `{schemaVersion, mediaType, config, layers, annotations}` plus `subject`.
    static func manifest(_ document: JSONValue) -> JSONValue {
        var object = JSONObject(capacity: 6)
        object.append("schemaVersion", schemaVersion(document))
        object.append("mediaType", .string(document["mediaType"]?.stringValue ?? ""))
        object.append("config", descriptor(document["config"]))
        object.append("layers", .array((document["layers"]?.arrayValue ?? []).map { descriptor($0) }))
        object.append("annotations", stringMap(document["annotations"]))
        if let subject = document["subject"], subject.objectValue != nil {
            object.append("subject", descriptor(subject))
        }
        return .object(object)
    }

    /// `{schemaVersion, mediaType, manifests, annotations}` plus `subject`.
    static func index(_ document: JSONValue) -> JSONValue {
        var object = JSONObject(capacity: 5)
        object.append("schemaVersion", schemaVersion(document))
        object.append("mediaType", .string(document["mediaType"]?.stringValue ?? ""))
        object.append("manifests", .array((document["manifests"]?.arrayValue ?? []).map { descriptor($0) }))
        object.append("annotations", stringMap(document["annotations"]))
        if let subject = document["subject"], subject.objectValue != nil {
            object.append("subject", descriptor(subject))
        }
        return .object(object)
    }

    /// `{mediaType, size, digest, artifactType, ref, annotations}`, `ref`
    /// being `registry/repository@digest`.
    static func referrer(_ source: JSONValue, repository name: String) -> JSONValue {
        let d = descriptor(source)
        let digest = d["digest"]?.stringValue ?? ""
        var object = JSONObject(capacity: 6)
        object.append("mediaType", d["mediaType"] ?? "")
        object.append("size", d["size"] ?? 0)
        object.append("digest", .string(digest))
        object.append("artifactType", d["artifactType"] ?? "")
        object.append("ref", .string("\(name)@\(digest)"))
        object.append("annotations", d["annotations"] ?? [:])
        return .object(object)
    }

    private static func schemaVersion(_ document: JSONValue) -> JSONValue {
        document["schemaVersion"].flatMap { $0.numberText.map(JSONValue.number) } ?? 0
    }

    private static func decodedData(_ base64: String?) -> String {
        guard let base64, !base64.isEmpty, let data = Data(base64Encoded: base64) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func stringMap(_ value: JSONValue?) -> JSONValue {
        let members = value?.objectValue?.members ?? []
        var object = JSONObject(capacity: members.count)
        for member in members {
            if let s = member.value.stringValue { object[member.key] = .string(s) }
        }
        return .object(object)
    }

    private static func stringArray(_ value: JSONValue?) -> JSONValue {
        .array((value?.arrayValue ?? []).compactMap { $0.stringValue.map(JSONValue.string) })
    }
}
