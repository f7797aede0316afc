import Reasons
import Archive
import JSON
import YAML

/// A file's contents as the builtins read them: YAML or JSON, or nil when
/// it is neither (such files are left out). A document over the YAML
/// converter's limits is an error, never left out: a policy would read its
/// absence as "no such file".
enum FileContent {
    /// What the files one call keeps may hold together in memory: what one
    /// answer may carry (past it the answer is `response_too_large`
    /// anyway). Each file is at most `ContentService.maxEntryBytes`, but a
    /// layer may hold thousands, each a few hundred bytes of gzip.
    static let maxKeptBytes = 512 << 20

    /// The memory the files kept so far hold, against `maxKeptBytes`.
    struct Kept {
        let limit: Int
        private(set) var bytes = 0

        init(limit: Int = FileContent.maxKeptBytes) { self.limit = limit }

        /// Counts `value` in, refusing it past the limit (fail closed: a
        /// file left out would read as absent).
        mutating func add(_ value: JSONValue) throws(ArchiveError) {
            bytes += value.memoryFootprint
            guard bytes <= limit else {
                throw ArchiveError(
                    .tooLarge, reason: .archiveTooLarge,
                    message: "the files read hold more than \(limit >> 20) MiB")
            }
        }
    }

    static func parse(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue? {
        do {
            return try YAMLToJSON.convert(bytes)
        } catch  where error.isLimit {
            throw error
        } catch {
            return nil
        }
    }
}
