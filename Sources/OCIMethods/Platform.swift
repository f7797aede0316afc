import Reasons
import JSON
import RPCDispatch

/// A platform asked for: `os/arch[/variant]`, matched against the
/// `platform` of an index's entries.
struct Platform: Sendable, Hashable, CustomStringConvertible {
    let os: String
    let architecture: String
    let variant: String?
    /// `os/arch[/variant]`, computed once (it is part of cache keys).
    let description: String

    static let linuxAMD64 = Platform(os: "linux", architecture: "amd64", variant: nil)

    init(os: String, architecture: String, variant: String?) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        description = variant.map { "\(os)/\(architecture)/\($0)" } ?? "\(os)/\(architecture)"
    }

    /// Parses `os/arch` or `os/arch/variant`.
    init(_ text: String) throws(RPCError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw RPCError(
                .invalidParams, reason: .invalidPlatform,
                message: "platform must be os/arch or os/arch/variant, not '\(text)'")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    /// Whether an index entry's `platform` object is this platform (any
    /// variant matches when none was asked for).
    func matches<Entry: JSONDocumentNode>(_ platform: Entry?) -> Bool {
        guard let platform else { return false }
        guard platform.member("os")?.stringText == os, platform.member("architecture")?.stringText == architecture
        else { return false }
        if let variant { return platform.member("variant")?.stringText == variant }
        return true
    }
}
