import Reasons
import Memory

/// Why an archive or a compressed stream could not be read.
public struct ArchiveError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Not a valid tar, gzip or zstd stream (or one cut short).
        case corrupt
        /// Over a size limit (an entry, a header, or the whole output).
        case tooLarge
        /// The file could not be read.
        case io
        /// The request reading it was cancelled.
        case cancelled
    }

    public let kind: Kind
    /// The contract's snake_case reason (`corrupt_archive`, `entry_too_large`, ...).
    public let reason: ErrorReason
    public let message: String

    public init(_ kind: Kind, reason: ErrorReason, message: String) {
        self.kind = kind
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(reason.rawValue): \(message)" }

    /// No file descriptor to spare for reading (`DescriptorReserve`).
    public static var descriptorLimit: ArchiveError {
        ArchiveError(.tooLarge, reason: .descriptorLimit, message: DescriptorReserve.refusal)
    }

    package static func corrupt(_ message: String) -> ArchiveError {
        ArchiveError(.corrupt, reason: .corruptArchive, message: message)
    }

    /// A file asked for that the archive stores sparse: its data is a map
    /// of holes, which is not read (nor reported as absent).
    public static func sparseFile(_ name: String) -> ArchiveError {
        ArchiveError(
            .corrupt, reason: .corruptArchive,
            message: "\(name.prefix(256)) is stored as a sparse file, which is not read")
    }
}
