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

    /// `path` cleaned, where it is mostly a rooted path otherwise clean (as
    /// a walk writes it): then only its `/` is dropped, with no names split
    /// and joined again.
    static func clean(rooted path: String) -> String {
        guard path.utf8.first == UInt8(ascii: "/"), let rest = String(path.utf8.dropFirst()), isClean(rest) else {
            return clean(path)
        }
        return rest
    }

    /// Whether `path` is already in its clean form: no leading or trailing
    /// `/`, no empty, `.` or `..` segment (one pass, no allocation).
    static func isClean(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { bytes in
            var segmentLength = 0
            var dots = 0
            for byte in bytes {
                if byte == UInt8(ascii: "/") {
                    if segmentLength == 0 || (segmentLength == dots && dots <= 2) { return false }
                    segmentLength = 0
                    dots = 0
                } else {
                    segmentLength += 1
                    if byte == UInt8(ascii: ".") { dots += 1 }
                }
            }
            return !bytes.isEmpty && segmentLength > 0 && !(segmentLength == dots && dots <= 2)
        }
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
