import Reasons
import Archive
import JSON
import YAML

/// Paths inside layers and blobs, cleaned the way Go's `path.Clean` does,
/// without a leading `/` (`./etc/x` -> `etc/x`, the root is `.`).
enum ArchivePath {
    static func clean(_ path: String) -> String {
        if isClean(path) { return path }
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

    /// Whether `path` is already in its clean form: no leading or trailing
    /// `/`, no empty, `.` or `..` segment (one pass, no allocation).
    static func isClean(_ path: String) -> Bool {
        var segmentLength = 0
        var dots = 0
        var empty = true
        for byte in path.utf8 {
            empty = false
            if byte == UInt8(ascii: "/") {
                if segmentLength == 0 || (segmentLength == dots && dots <= 2) { return false }
                segmentLength = 0
                dots = 0
            } else {
                segmentLength += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
        }
        return !empty && segmentLength > 0 && !(segmentLength == dots && dots <= 2)
    }

    /// The directory of a cleaned path (`.` at the root).
    static func directory(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return String(path[..<slash])
    }

    static func base(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(path[path.utf8.index(after: slash)...])
    }
}

/// `blob_files`: the entries of one tar whose names are exactly one of
/// the paths asked for, parsed as YAML or JSON. Unparseable and oversized
/// entries are skipped.
enum BlobFiles {
    static func read(_ tar: TarReader, paths: Set<String>, maxEntryBytes: Int) throws -> JSONValue {
        var result = JSONObject()
        while let entry = try tar.next() {
            guard entry.kind == .file, paths.contains(entry.name) else { continue }
            // Too large to parse: skipped, as the builtin skips it. A read
            // that fails (a cut stream, the budget, cancellation) fails the call.
            guard entry.size <= maxEntryBytes,
                let value = try FileContent.parse(try tar.readContents(limit: maxEntryBytes))
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

    init(paths: [String], maxEntryBytes: Int, maxTrackedNameBytes: Int = LayerFlattener.maxTrackedNameBytes) {
        directories = Set(paths.map { ArchivePath.clean($0).lowercased() })
        self.maxEntryBytes = maxEntryBytes
        self.maxTrackedNameBytes = maxTrackedNameBytes
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
                throw ArchiveError(.tooLarge, reason: .archiveTooLarge,
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
            layerDecisions.append((name, .seen))
            guard entry.kind == .file, isWanted(name, directory: directory) else {
                files[name] = nil
                continue
            }
            // Too large to parse: skipped, as the builtin skips it.
            guard entry.size <= maxEntryBytes else {
                files[name] = nil
                continue
            }
            files[name] = try FileContent.parse(try tar.readContents(limit: maxEntryBytes))
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

/// A file's contents as the builtins read them: YAML or JSON, or nil when
/// it is neither (such files are left out). A document over the YAML
/// converter's limits is an error, never left out: a policy would read its
/// absence as "no such file".
enum FileContent {
    static func parse(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue? {
        do {
            return try YAMLToJSON.convert(bytes)
        } catch where error.isLimit {
            throw error
        } catch {
            return nil
        }
    }
}
