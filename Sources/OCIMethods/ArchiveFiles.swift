import Archive
import JSON
import YAML

/// Paths inside layers and blobs, cleaned the way Go's `path.Clean` does,
/// without a leading `/` (`./etc/x` -> `etc/x`, the root is `.`).
enum ArchivePath {
    static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                _ = parts.popLast()
                continue
            }
            parts.append(part)
        }
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// The directory of a cleaned path (`.` at the root).
    static func directory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    static func base(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// `blob_files`: the entries of one tar whose names are exactly one of
/// the paths asked for, parsed as YAML or JSON. Unparseable and oversized
/// entries are skipped.
enum BlobFiles {
    static func read(_ tar: TarReader, paths: Set<String>, maxEntryBytes: Int) throws(ArchiveError) -> JSONValue {
        var result = JSONObject()
        while let entry = try tar.next() {
            guard entry.kind == .file, paths.contains(entry.name) else { continue }
            guard let bytes = try? tar.readContents(limit: maxEntryBytes),
                let value = try? YAMLToJSON.convert(bytes)
            else { continue }
            result[entry.name] = value
        }
        return .object(result)
    }
}

/// `image_files`: reads an image's layers from the top one down and keeps
/// what the flattened filesystem shows: a later layer's entry hides an
/// earlier one, `.wh.<name>` deletes `<name>` below it, `.wh..wh..opq`
/// empties its directory below it. Only files in the wanted directories
/// with a YAML or JSON extension are read; the rest is skipped unread.
struct LayerFlattener {
    static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// Cleaned, lower-cased directories asked for.
    private let directories: Set<String>
    private let maxEntryBytes: Int
    /// Paths decided by an upper layer, whited out by one, or opaque in one.
    private var seen: Set<String> = []
    private var deleted: Set<String> = []
    private var opaque: Set<String> = []
    private var files = JSONObject()

    init(paths: [String], maxEntryBytes: Int) {
        directories = Set(paths.map { ArchivePath.clean($0).lowercased() })
        self.maxEntryBytes = maxEntryBytes
    }

    /// The files found so far, by cleaned entry name.
    var result: JSONValue { .object(files) }

    /// Applies the next layer down (call for the top layer first).
    mutating func apply(_ tar: TarReader) throws(ArchiveError) {
        var layerSeen: Set<String> = []
        var layerDeleted: Set<String> = []
        var layerOpaque: Set<String> = []
        while let entry = try tar.next() {
            let name = ArchivePath.clean(entry.name)
            guard name != "." else { continue }
            let base = ArchivePath.base(name)
            let directory = ArchivePath.directory(name)
            if base == ".wh..wh..opq" {
                layerOpaque.insert(directory)
                continue
            }
            if base.hasPrefix(".wh.") {
                let target = String(base.dropFirst(4))
                layerDeleted.insert(directory == "." ? target : directory + "/" + target)
                continue
            }
            guard !hiddenByUpperLayers(name) else { continue }
            layerSeen.insert(name)
            guard entry.kind == .file, isWanted(name, directory: directory) else {
                files[name] = nil
                continue
            }
            guard let bytes = try? tar.readContents(limit: maxEntryBytes),
                let value = try? YAMLToJSON.convert(bytes)
            else {
                files[name] = nil
                continue
            }
            files[name] = value
        }
        seen.formUnion(layerSeen)
        deleted.formUnion(layerDeleted)
        opaque.formUnion(layerOpaque)
    }

    /// Whether an upper layer already decided `name`, deleted it or one of
    /// its ancestors, or made an ancestor opaque.
    private func hiddenByUpperLayers(_ name: String) -> Bool {
        if seen.contains(name) || deleted.contains(name) { return true }
        var index = name.startIndex
        while let slash = name[index...].firstIndex(of: "/") {
            let ancestor = String(name[..<slash])
            if deleted.contains(ancestor) || opaque.contains(ancestor) { return true }
            index = name.index(after: slash)
        }
        return opaque.contains(".")
    }

    private func isWanted(_ name: String, directory: String) -> Bool {
        guard directories.contains(directory.lowercased()) else { return false }
        let base = ArchivePath.base(name)
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex || base.count > 1 else { return false }
        return Self.extensions.contains(base[base.index(after: dot)...].lowercased())
    }
}
