import DiskCaching
import JSON

/// Where results derived from content (`parsed_blob`, `blob_files`,
/// `image_files`) are kept beyond the process: the disk cache. Names hold
/// the repository, the content digest and the parameters, so a result is
/// only ever read back for the repository it was computed from.
protocol DerivedResultStore: Sendable {
    func result(_ kind: String, _ name: String) -> JSONValue?
    func store(_ kind: String, _ name: String, _ value: JSONValue)
}

extension DiskCache: DerivedResultStore {
    func result(_ kind: String, _ name: String) -> JSONValue? {
        // Verified against its hash before it is read; written by us. Kept
        // as text, as it was stored; as deep as an answer (a file's value
        // 512 levels deep, in the object of files).
        derived(kind, name).flatMap { try? JSONParser.compacted($0, maxDepth: JSONParser.answerMaxDepth) }
    }

    func store(_ kind: String, _ name: String, _ value: JSONValue) {
        storeDerived(kind, name, JSONWriter.bytes(value))
    }
}
