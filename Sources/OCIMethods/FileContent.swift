import Reasons
import Archive
import JSON
import Memory
import YAML

/// A file's contents as the builtins read them: YAML or JSON, or nil when
/// it is neither (such files are left out). A document over the YAML
/// converter's limits, or one the original's converter would read
/// otherwise, is an error, never left out: a policy would read its absence
/// as "no such file".
enum FileContent {
    /// What the files one call keeps may hold together in memory: what one
    /// answer may carry (past it the answer is `response_too_large`
    /// anyway). Each file is at most `ContentService.maxEntryBytes`, but a
    /// layer may hold thousands, each a few hundred bytes of gzip.
    static let maxKeptBytes = 512 << 20

    /// The memory the files kept so far hold, against `maxKeptBytes`, and
    /// against what the calls in flight may hold together (the call's
    /// `MemoryShare`, when it has one).
    struct Kept {
        let limit: Int
        let share: MemoryShare?
        private(set) var bytes = 0

        init(limit: Int = FileContent.maxKeptBytes, share: MemoryShare? = MemoryShare.current) {
            self.limit = limit
            self.share = share
        }

        /// Reads the entry `tar` is at (`size` bytes, as its header says)
        /// and parses it, holding against the share while it is parsed its
        /// bytes and what compacting them holds (`JSONParser.compactionBytes`:
        /// the text written and copied out, each at most as large, taken
        /// before it is read; the places of its keys, once it is), and keeps
        /// what it parses to.
        mutating func read(_ tar: TarReader, size: Int, maxEntryBytes: Int) throws -> JSONValue? {
            let reading = 3 * min(size, maxEntryBytes)
            try share?.take(reading)
            defer { share?.giveBack(reading) }
            let contents = try tar.readContents(limit: maxEntryBytes)
            let keys = JSONParser.compactionBytes(for: contents) - 2 * contents.count
            try share?.take(keys)
            defer { share?.giveBack(keys) }
            let value = try FileContent.parse(contents)
            if let value { try add(value) }
            return value
        }

        /// Counts `value` in, refusing it past the limit (fail closed: a
        /// file left out would read as absent).
        mutating func add(_ value: JSONValue) throws {
            let footprint = value.memoryFootprint
            bytes += footprint
            guard bytes <= limit else {
                throw ArchiveError(
                    .tooLarge, reason: .archiveTooLarge,
                    message: "the files read hold more than \(limit >> 20) MiB")
            }
            try share?.take(footprint)
        }
    }

    static func parse(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue? {
        do {
            return try YAMLToJSON.convert(bytes)
        } catch  where error.isLimit || error.isAmbiguous {
            throw error
        } catch {
            return nil
        }
    }
}

extension MemoryShare {
    /// Takes `count` bytes, or says why not as the archive readers throw
    /// it (`memory_limit`, answered retryable).
    func refusal(taking count: Int) -> ArchiveError? {
        do {
            try take(count)
            return nil
        } catch {
            return ArchiveError(.tooLarge, reason: MemoryLimitExceeded.reason, message: error.message)
        }
    }
}
