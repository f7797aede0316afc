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

    /// Whether an index entry names no platform (none, or `null`):
    /// go-containerregistry takes it for `linux/amd64`, containerd for any
    /// platform, ranked after every entry that names one.
    static func isUnnamed<Entry: JSONDocumentNode>(_ platform: Entry?) -> Bool {
        platform.map(\.isNull) ?? true
    }

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

    /// Whether a runtime that normalises platforms as containerd does could
    /// take an index entry's `platform` for this one: letter case, `x86_64`
    /// and `x86-64` for `amd64`, `aarch64` for `arm64`, `i386`, `armhf`,
    /// `armel`, an `arm` variant without its `v`, `macos`; an empty `os` is
    /// the host's, so it may be any. Case is lowered as containerd lowers
    /// it, with Go's `strings.ToLower` (`GoCase`: `lİnux` is `linux`), and
    /// names are compared by their bytes. (`matches` is exact, as
    /// go-containerregistry and containers/image match.)
    func mayBeTakenFor<Entry: JSONDocumentNode>(_ platform: Entry?) -> Bool {
        guard let platform, platform.isObject else { return false }
        let entryOS = Self.normalizedOS(platform.member("os")?.stringText ?? "")
        guard entryOS.isEmpty || entryOS.utf8.elementsEqual(Self.normalizedOS(os).utf8) else { return false }
        let entry = Self.normalizedArchitecture(
            platform.member("architecture")?.stringText ?? "", variant: platform.member("variant")?.stringText ?? "")
        let wanted = Self.normalizedArchitecture(architecture, variant: variant ?? "")
        return entry.architecture.utf8.elementsEqual(wanted.architecture.utf8)
            && (variant == nil || entry.variant.utf8.elementsEqual(wanted.variant.utf8))
    }

    /// Where containerd ranks an index entry's `platform` when it pulls
    /// for this one (`platforms.Only`, as containerd, and Docker and
    /// Kubernetes on it, pull for a node): 0 for this platform itself, more
    /// for what it also runs, in order (lower variants of `amd64` and
    /// `arm`, then `386` for `amd64`, and `arm/v8` down to `arm/v5` for
    /// `arm64`: containerd's `platformVector`); nil for an entry it does
    /// not run, or that names no platform (which containerd ranks after
    /// every entry that names one). Names are normalised as containerd
    /// normalises them; an empty `os` is the host's, taken to be this
    /// one's. The rank is counted, never listed: the variant asked for may
    /// name any level (`amd64/v9223372036854775807`).
    func runtimeRank<Entry: JSONDocumentNode>(_ platform: Entry?) -> Int? {
        guard let platform, platform.isObject else { return nil }
        let entryOS = Self.normalizedOS(platform.member("os")?.stringText ?? "")
        guard entryOS.isEmpty || entryOS.utf8.elementsEqual(Self.normalizedOS(os).utf8) else { return nil }
        let entry = Self.normalizedArchitecture(
            platform.member("architecture")?.stringText ?? "", variant: platform.member("variant")?.stringText ?? "")
        func isEntry(_ architecture: String, _ variant: String) -> Bool {
            entry.architecture.utf8.elementsEqual(architecture.utf8) && entry.variant.utf8.elementsEqual(variant.utf8)
        }
        let wanted = Self.normalizedArchitecture(architecture, variant: variant ?? "")
        if isEntry(wanted.architecture, wanted.variant) { return 0 }
        var rank = 1
        /// The entry's rank among `architecture`'s levels below `variant`'s,
        /// down to `least` (each a rank, best first); else nil, and `rank`
        /// moved past them.
        func below(_ variant: String, of architecture: String, downTo least: Int) -> Int? {
            // containerd reads the level with `strconv.Atoi` after a "v".
            guard let level = Int(variant.hasPrefix("v") ? String(variant.dropFirst()) : variant), level > least
            else { return nil }
            if entry.architecture.utf8.elementsEqual(architecture.utf8), let entryLevel = Self.level(of: entry),
                (least..<level).contains(entryLevel)
            {
                return rank + (level - 1 - entryLevel)
            }
            rank += level - least
            return nil
        }
        switch wanted.architecture {
        case "amd64":
            if let found = below(wanted.variant, of: "amd64", downTo: 1) { return found }
            return isEntry("386", "") ? rank : nil
        case "arm":
            return below(wanted.variant, of: "arm", downTo: 5)
        case "arm64":
            let arm = Self.normalizedArchitecture("arm", variant: wanted.variant.isEmpty ? "v8" : wanted.variant)
            if isEntry(arm.architecture, arm.variant) { return rank }
            rank += 1
            return below(arm.variant, of: "arm", downTo: 5)
        default:
            return nil
        }
    }

    /// The level a normalised `amd64` or `arm` entry names, as containerd
    /// writes the levels it runs (`v2`; `amd64`'s `v1` normalised to
    /// none): nil for a variant written otherwise (`v02`), which it
    /// compares as text and never matches.
    private static func level(of entry: (architecture: String, variant: String)) -> Int? {
        if entry.variant.isEmpty { return entry.architecture == "amd64" ? 1 : nil }
        guard entry.variant.hasPrefix("v"), let level = Int(entry.variant.dropFirst()), "v\(level)" == entry.variant
        else { return nil }
        return entry.architecture == "amd64" && level == 1 ? nil : level
    }

    /// An entry's `platform` as `os/arch[/variant]`, for messages.
    static func written<Entry: JSONDocumentNode>(_ platform: Entry?) -> String {
        let os = platform?.member("os")?.stringText ?? ""
        let architecture = platform?.member("architecture")?.stringText ?? ""
        let variant = platform?.member("variant")?.stringText ?? ""
        return "\(os)/\(architecture)" + (variant.isEmpty ? "" : "/\(variant)")
    }

    private static func normalizedOS(_ os: String) -> String {
        let os = GoCase.lowercased(os)
        return os == "macos" ? "darwin" : os
    }

    /// containerd's table of architecture names and variants.
    private static func normalizedArchitecture(_ architecture: String, variant: String) -> (
        architecture: String, variant: String
    ) {
        let (architecture, variant) = (GoCase.lowercased(architecture), GoCase.lowercased(variant))
        switch architecture {
        case "i386": return ("386", "")
        case "x86_64", "x86-64", "amd64": return ("amd64", variant == "v1" ? "" : variant)
        case "aarch64", "arm64":
            switch variant {
            case "8", "v8", "v8.0": return ("arm64", "")
            case "9", "9.0", "v9.0": return ("arm64", "v9")
            default: return ("arm64", variant)
            }
        case "armhf": return ("arm", "v7")
        case "armel": return ("arm", "v6")
        case "arm":
            switch variant {
            case "", "7": return ("arm", "v7")
            case "5", "6", "8": return ("arm", "v" + variant)
            default: return ("arm", variant)
            }
        default: return (architecture, variant)
        }
    }

    /// Whether an index entry's `platform` object is this platform (any
    /// variant matches when none was asked for), by the names' bytes, as
    /// Go compares strings (`==` on text compares by canonical
    /// equivalence: the Kelvin sign is `K`). An entry without one (or
    /// with `null`) is `linux/amd64`, as go-containerregistry takes it.
    func matches<Entry: JSONDocumentNode>(_ platform: Entry?) -> Bool {
        guard let platform, !platform.isNull else { return self == .linuxAMD64 }
        func member(_ key: StaticString, is wanted: String) -> Bool {
            platform.member(key)?.stringText.map { $0.utf8.elementsEqual(wanted.utf8) } ?? false
        }
        guard member("os", is: os), member("architecture", is: architecture) else { return false }
        if let variant { return member("variant", is: variant) }
        return true
    }
}
