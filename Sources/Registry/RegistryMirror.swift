/// A mirror of a registry, and which references it may serve
/// (`pull-from-mirror` / `mirror-by-digest-only` in registries.conf). A
/// tag served by a mirror is the mirror's word for what the tag means; a
/// digest is verified whoever serves it.
public struct RegistryMirror: Sendable, Equatable {
    public enum Pull: Sendable, Equatable {
        case all, digestOnly, tagOnly

        /// The value of `pull-from-mirror`: `all`, `digest-only` or `tag-only`.
        public init?(setting: String) {
            switch setting {
            case "all": self = .all
            case "digest-only": self = .digestOnly
            case "tag-only": self = .tagOnly
            default: return nil
            }
        }
    }

    /// `host[:port]`, or `host[:port]/namespace...` for a mirror that
    /// holds the registry's names under a namespace of its own.
    public var location: String
    public var pull: Pull

    public init(location: String, pull: Pull = .all) {
        self.location = location
        self.pull = pull
    }

    /// Whether this mirror may be asked for `reference`.
    public func serves(_ reference: ImageReference) -> Bool {
        switch pull {
        case .all: return true
        case .digestOnly: return reference.digest != nil
        case .tagOnly: return reference.digest == nil
        }
    }
}
