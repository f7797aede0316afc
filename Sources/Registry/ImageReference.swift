/// Why a string is not an image reference.
public struct ReferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reference: String
    public let reason: String
    public var description: String { "invalid reference '\(reference)': \(reason)" }
}

/// A parsed image reference: registry, repository, and a tag or a digest.
///
/// Owns the Docker/OCI grammar and its defaults: no registry means
/// `index.docker.io`, a one-component Docker Hub path gets `library/`, no tag
/// and no digest means `latest`. With both a tag and a digest, the digest
/// names the content and the tag is kept only for display.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    public static let dockerHub = "index.docker.io"

    /// `host[:port]`, e.g. `index.docker.io`, `localhost:5000`.
    public let registry: String
    /// The repository path, e.g. `library/alpine`.
    public let repository: String
    public let tag: String?
    public let digest: Digest?

    public init(registry: String, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = digest == nil ? (tag ?? "latest") : tag
        self.digest = digest
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    public var identifier: String { digest?.description ?? tag ?? "latest" }

    /// `registry/repository`.
    public var name: String { "\(registry)/\(repository)" }

    /// `registry/repository[:tag][@digest]`.
    public var description: String {
        var text = name
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    /// The same repository at `digest` (the tag is dropped).
    public func pinned(to digest: Digest) -> ImageReference {
        ImageReference(registry: registry, repository: repository, tag: nil, digest: digest)
    }

    /// The same repository at `tag`.
    public func tagged(_ tag: String) -> ImageReference {
        ImageReference(registry: registry, repository: repository, tag: tag, digest: nil)
    }

    /// Parses a reference string.
    public static func parse(_ text: String) throws(ReferenceError) -> ImageReference {
        func fail(_ reason: String) -> ReferenceError { ReferenceError(reference: text, reason: reason) }
        guard !text.isEmpty else { throw fail("empty reference") }
        // References are ASCII: anything else (spaces, controls, non-ASCII) is refused.
        guard text.utf8.count <= 4096, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw fail("contains whitespace or non-ASCII characters, or is too long")
        }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let digestText = rest[rest.index(after: at)...]
            guard !digestText.isEmpty else { throw fail("empty digest after '@'") }
            guard !digestText.utf8.contains(UInt8(ascii: "@")) else { throw fail("more than one '@'") }
            guard let parsed = Digest(String(digestText)) else {
                throw fail("digest must be sha256:<64 hex> or sha512:<128 hex>")
            }
            digest = parsed
            rest = rest[..<at]
        }
        // A tag follows the last ':' that comes after the last '/'.
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let tagText = rest[rest.index(after: colon)...]
            guard isValidTag(tagText) else {
                throw fail("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
            }
            tag = String(tagText)
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw fail("empty repository name") }

        var registry = dockerHub
        var path = rest
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            let bytes = first.utf8
            if bytes.contains(UInt8(ascii: ".")) || bytes.contains(UInt8(ascii: ":")) || first == "localhost"
                || bytes.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
                guard isValidRegistry(first) else { throw fail("invalid registry host '\(first)'") }
                registry = String(first)
                path = rest[rest.index(after: slash)...]
            }
        }
        if registry == "docker.io" || registry == "registry-1.docker.io" { registry = dockerHub }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        for component in components {
            guard isValidPathComponent(component) else {
                throw fail("repository path component '\(component)' must be lower-case letters, digits and separators")
            }
        }
        var repository = String(path)
        if registry == dockerHub && components.count == 1 { repository = "library/" + repository }
        // As distribution counts it: the whole normalised name, registry included.
        guard registry.utf8.count + 1 + repository.utf8.count <= 255 else {
            throw fail("name longer than 255 characters")
        }
        return ImageReference(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    private static func isValidTag(_ tag: Substring) -> Bool {
        guard let first = tag.utf8.first, tag.utf8.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
        }
        return word(first) && tag.utf8.allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }

    /// alpha-numeric (separator alpha-numeric)*, separator = `.` `_` `__` `-+`.
    private static func isValidPathComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else {
            return false
        }
        var i = 0
        while i < bytes.count {
            if isLowerAlnum(bytes[i]) {
                i += 1
                continue
            }
            // A separator run: ".", "_", "__", or one or more "-".
            var j = i
            while j < bytes.count && !isLowerAlnum(bytes[j]) { j += 1 }
            let separator = bytes[i..<j]
            let valid = separator.elementsEqual([0x2E]) || separator.elementsEqual([0x5F])
                || separator.elementsEqual([0x5F, 0x5F]) || separator.allSatisfy { $0 == 0x2D }
            guard valid else { return false }
            i = j
        }
        return true
    }

    private static func isLowerAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A)
    }

    /// `host[:port]` where host is a DNS name, an IPv4 address or `[IPv6]`.
    private static func isValidRegistry(_ registry: Substring) -> Bool {
        var host = registry
        if registry.hasPrefix("[") {
            guard let close = registry.firstIndex(of: "]") else { return false }
            let inside = registry[registry.index(after: registry.startIndex)..<close]
            guard !inside.isEmpty, inside.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
            let after = registry[registry.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":") else { return false }
            return isValidPort(after.dropFirst())
        }
        if let colon = registry.lastIndex(of: ":") {
            guard isValidPort(registry[registry.index(after: colon)...]) else { return false }
            host = registry[..<colon]
        }
        guard !host.isEmpty else { return false }
        // DNS labels of ASCII letters, digits and inner hyphens (or an IPv4 address).
        return host.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy { label in
            guard let f = label.first, let l = label.last, isASCIIAlnum(f), isASCIIAlnum(l) else { return false }
            return label.allSatisfy { isASCIIAlnum($0) || $0 == UInt8(ascii: "-") }
        }
    }

    private static func isASCIIAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    private static func isValidPort(_ port: Substring) -> Bool {
        guard port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(port), n > 0, n < 65536 else { return false }
        return true
    }
}
