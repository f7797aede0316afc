import Reasons
import Archive
import JSON
import YAML

/// `blob_files`: the entries of one tar whose names are exactly one of
/// the paths asked for, parsed as YAML or JSON. Unparseable and oversized
/// entries are skipped; one stored sparse is an error (its data is a map
/// of holes, which is not read).
enum BlobFiles {
    static func read(
        _ tar: TarReader, paths: Set<String>, maxEntryBytes: Int, maxKeptBytes: Int = FileContent.maxKeptBytes
    ) throws -> JSONValue {
        var result = JSONObject()
        var kept = FileContent.Kept(limit: maxKeptBytes)
        while let entry = try tar.next() {
            guard paths.contains(entry.name) else { continue }
            if entry.kind == .sparse { throw ArchiveError.sparseFile(entry.name) }
            guard entry.kind == .file else { continue }
            // Too large to parse: skipped, as the builtin skips it. A read
            // that fails (a cut stream, the budget, cancellation) fails the call.
            guard entry.size <= maxEntryBytes,
                let value = try kept.read(tar, size: entry.size, maxEntryBytes: maxEntryBytes)
            else { continue }
            result[entry.name] = value
        }
        return .object(result)
    }
}
