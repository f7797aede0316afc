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
        name = "\(registry)/\(repository)"
        var text = name
        if let tag = self.tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        description = text
    }

    /// A reference parsed from `text` that is already written the way
    /// `description` would write it: `text` is kept as it is, and `name`
    /// is its first `nameLength` bytes.
    private init(
        canonical text: String, nameLength: Int, registry: String, repository: String, tag: String?, digest: Digest?
    ) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
        name = String(decoding: text.utf8.prefix(nameLength), as: UTF8.self)
        description = text
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    public var identifier: String { digest?.description ?? tag ?? "latest" }

    /// `registry/repository`, made once (it is part of many cache keys).
    public let name: String

    /// `registry/repository[:tag][@digest]`, made once; it names the
    /// reference, so equality and hashing use it alone.
    public let description: String

    public static func == (lhs: ImageReference, rhs: ImageReference) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

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
        // References are ASCII: anything else (spaces, controls, non-ASCII) is
        // refused, so the grammar below can work on bytes.
        let bytes = Array(text.utf8)
        guard bytes.count <= 4096, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw fail("contains whitespace or non-ASCII characters, or is too long")
        }
        func string(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        var end = bytes.count
        var digest: Digest?
        if let at = bytes.firstIndex(of: UInt8(ascii: "@")) {
            let digestRange = (at + 1)..<end
            guard !digestRange.isEmpty else { throw fail("empty digest after '@'") }
            guard !bytes[digestRange].contains(UInt8(ascii: "@")) else { throw fail("more than one '@'") }
            guard let parsed = Digest(string(digestRange)) else {
                throw fail("digest must be sha256:<64 hex> or sha512:<128 hex>")
            }
            digest = parsed
            end = at
        }
        // A tag follows the last ':' that comes after the last '/'.
        var tag: String?
        let lastSlash = bytes[..<end].lastIndex(of: UInt8(ascii: "/"))
        if let colon = bytes[..<end].lastIndex(of: UInt8(ascii: ":")), lastSlash.map({ colon > $0 }) ?? true {
            let tagRange = (colon + 1)..<end
            guard isValidTag(bytes[tagRange]) else {
                throw fail("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
            }
            tag = string(tagRange)
            end = colon
        }
        guard end > 0 else { throw fail("empty repository name") }

        var registry = dockerHub
        var pathStart = 0
        if let slash = bytes[..<end].firstIndex(of: UInt8(ascii: "/")) {
            let first = bytes[..<slash]
            if first.contains(UInt8(ascii: ".")) || first.contains(UInt8(ascii: ":"))
                || first.elementsEqual("localhost".utf8)
                || first.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") })
            {
                guard isValidRegistry(first) else { throw fail("invalid registry host '\(string(0..<slash))'") }
                registry = string(0..<slash)
                pathStart = slash + 1
            }
        }
        if registry == "docker.io" || registry == "registry-1.docker.io" { registry = dockerHub }
        // The path's components, between slashes (empty ones are invalid).
        var componentCount = 0
        var componentStart = pathStart
        for index in pathStart...end where index == end || bytes[index] == UInt8(ascii: "/") {
            let component = bytes[componentStart..<index]
            guard isValidPathComponent(component) else {
                throw fail(
                    "repository path component '\(String(decoding: component, as: UTF8.self))' "
                        + "must be lower-case letters, digits and separators")
            }
            componentCount += 1
            componentStart = index + 1
        }
        var repository = string(pathStart..<end)
        var normalised = pathStart == 0 || registry.utf8.count != pathStart - 1
        if registry == dockerHub && componentCount == 1 {
            repository = "library/" + repository
            normalised = true
        }
        // As distribution counts it: the whole normalised name, registry included.
        guard registry.utf8.count + 1 + repository.utf8.count <= 255 else {
            throw fail("name longer than 255 characters")
        }
        // Written as `description` would write it (the registry given, no
        // `library/` or `latest` added): the text is kept, not rebuilt.
        if !normalised && (tag != nil || digest != nil) {
            return ImageReference(
                canonical: text, nameLength: end, registry: registry, repository: repository, tag: tag, digest: digest)
        }
        return ImageReference(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    private typealias Bytes = ArraySlice<UInt8>

    private static func isValidTag(_ tag: Bytes) -> Bool {
        guard let first = tag.first, tag.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
        }
        return word(first) && tag.allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }

    /// alpha-numeric (separator alpha-numeric)*, separator = `.` `_` `__` `-+`.
    static func isValidPathComponent(_ component: ArraySlice<UInt8>) -> Bool {
        guard let first = component.first, let last = component.last, isLowerAlnum(first), isLowerAlnum(last) else {
            return false
        }
        var i = component.startIndex
        while i < component.endIndex {
            if isLowerAlnum(component[i]) {
                i += 1
                continue
            }
            // A separator run: ".", "_", "__", or one or more "-".
            var j = i
            while j < component.endIndex && !isLowerAlnum(component[j]) { j += 1 }
            let separator = component[i..<j]
            let valid =
                separator.elementsEqual([0x2E]) || separator.elementsEqual([0x5F])
                || separator.elementsEqual([0x5F, 0x5F]) || separator.allSatisfy { $0 == 0x2D }
            guard valid else { return false }
            i = j
        }
        return true
    }

    private static func isLowerAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A)
    }

    private static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
    }

    /// `host[:port]` where host is a DNS name, an IPv4 address or `[IPv6]`.
    static func isValidRegistry(_ registry: ArraySlice<UInt8>) -> Bool {
        var host = registry
        if registry.first == UInt8(ascii: "[") {
            guard let close = registry.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let inside = registry[(registry.startIndex + 1)..<close]
            guard !inside.isEmpty,
                inside.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            let after = registry[(close + 1)...]
            if after.isEmpty { return true }
            guard after.first == UInt8(ascii: ":") else { return false }
            return isValidPort(after.dropFirst())
        }
        if let colon = registry.lastIndex(of: UInt8(ascii: ":")) {
            guard isValidPort(registry[(colon + 1)...]) else { return false }
            host = registry[..<colon]
        }
        guard !host.isEmpty else { return false }
        // DNS labels of ASCII letters, digits and inner hyphens (or an IPv4 address).
        var labelStart = host.startIndex
        for index in host.startIndex...host.endIndex {
            guard index == host.endIndex || host[index] == UInt8(ascii: ".") else {
                guard isASCIIAlnum(host[index]) || host[index] == UInt8(ascii: "-") else { return false }
                continue
            }
            let label = host[labelStart..<index]
            guard let f = label.first, let l = label.last, isASCIIAlnum(f), isASCIIAlnum(l) else { return false }
            labelStart = index + 1
        }
        return true
    }

    private static func isASCIIAlnum(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// 1 to 65535, in decimal digits.
    private static func isValidPort(_ port: Bytes) -> Bool {
        guard !port.isEmpty, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        var value = 0
        for digit in port {
            value = value * 10 + Int(digit - 0x30)
            if value > 65535 { return false }
        }
        return value > 0
    }
}
