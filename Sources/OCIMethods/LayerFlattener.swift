import Reasons
import Archive
import JSON
import YAML

/// `image_files`: reads an image's layers from the top one down and keeps
/// what the flattened filesystem shows: a later layer's entry hides an
/// earlier one, and one that is not a directory (a file, a link) hides
/// everything below it under its path too, as a runtime unpacking the
/// layers replaces a directory with it; `.wh.<name>` deletes `<name>`
/// below it, `.wh..wh..opq` empties its directory below it. Only files in
/// the wanted directories with a YAML or JSON extension are read; the rest
/// is skipped unread. A wanted file stored sparse is an error: its data is
/// a map of holes, which is not read.
struct LayerFlattener {
    static let extensions: Set<String> = ["yaml", "yml", "json"]
    /// The names the flattener remembers across layers, in bytes, at most
    /// (an archive of millions of entries is refused, not held).
    static let maxTrackedNameBytes = 64 << 20

    /// Cleaned, lower-cased directories asked for.
    private let directories: Set<String>
    private let maxEntryBytes: Int
    /// Paths decided by an upper layer, whited out by one, or opaque in one.
    private var decided = PathTrie()
    private var trackedNameBytes = 0
    private let maxTrackedNameBytes: Int
    private var files: [String: JSONValue] = [:]
    /// What the files kept hold in memory, bounded.
    private var kept: FileContent.Kept

    init(
        paths: [String], maxEntryBytes: Int, maxTrackedNameBytes: Int = LayerFlattener.maxTrackedNameBytes,
        maxKeptBytes: Int = FileContent.maxKeptBytes
    ) {
        directories = Set(paths.map { ArchivePath.clean($0).lowercased() })
        self.maxEntryBytes = maxEntryBytes
        self.maxTrackedNameBytes = maxTrackedNameBytes
        kept = FileContent.Kept(limit: maxKeptBytes)
    }

    /// The files found so far, by cleaned entry name (sorted, as Go writes a map).
    var result: JSONValue {
        .object(JSONObject(files.keys.sorted().map { JSONObject.Member(key: $0, value: files[$0]!) }))
    }

    /// Applies the next layer down (call for the top layer first).
    mutating func apply(_ tar: TarReader) throws {
        // What this layer decides hides only the layers below it.
        var layerDecisions: [(String, PathTrie.Mark)] = []
        while let entry = try tar.next() {
            let name = ArchivePath.clean(entry.name)
            guard name != "." else { continue }
            trackedNameBytes += name.utf8.count
            guard trackedNameBytes <= maxTrackedNameBytes else {
                throw ArchiveError(
                    .tooLarge, reason: .archiveTooLarge,
                    message: "the layers hold more than \(maxTrackedNameBytes) bytes of entry names")
            }
            let base = ArchivePath.base(name)
            let directory = ArchivePath.directory(name)
            if base == ".wh..wh..opq" {
                layerDecisions.append((directory, .opaque))
                continue
            }
            if base.hasPrefix(".wh.") {
                let target = String(base.dropFirst(4))
                layerDecisions.append((directory == "." ? target : directory + "/" + target, .deleted))
                continue
            }
            guard !decided.hides(name) else { continue }
            layerDecisions.append((name, entry.kind == .directory ? .seen : .notDirectory))
            let wanted = isWanted(name, directory: directory)
            if wanted && entry.kind == .sparse { throw ArchiveError.sparseFile(name) }
            guard entry.kind == .file, wanted else {
                files[name] = nil
                continue
            }
            // Too large to parse: skipped, as the builtin skips it.
            guard entry.size <= maxEntryBytes else {
                files[name] = nil
                continue
            }
            files[name] = try kept.read(tar, size: entry.size, maxEntryBytes: maxEntryBytes)
        }
        for (path, mark) in layerDecisions { decided.insert(path, mark) }
    }

    private func isWanted(_ name: String, directory: String) -> Bool {
        guard directories.contains(directory.lowercased()) else { return false }
        let base = ArchivePath.base(name)
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex || base.count > 1 else { return false }
        return Self.extensions.contains(base[base.index(after: dot)...].lowercased())
    }
}
