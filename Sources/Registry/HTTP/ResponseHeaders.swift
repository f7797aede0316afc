/// The response headers the client reads, one slot per name: a response
/// keeps these and skips the others (Date, ETag, ...) without making
/// strings of them. A new use of a header adds its name to `names`.
package struct ResponseHeaders: Sendable {
    /// The names kept, lower-cased: those the client reads, and `location`
    /// for the test fixtures, which push through this transport. They
    /// differ in length (a test checks it), so the length of a name picks
    /// the one it could be (`index(of:)`).
    package static let names = [
        "content-length", "content-type", "docker-content-digest", "location", "retry-after", "www-authenticate",
        "link", "content-range",
    ]

    /// The slot of `link`, a field that may come several times: its values
    /// are joined with `, ` as they come (RFC 9110, 5.3), so that no next
    /// page named in one of them is missed.
    package static let linkIndex = 6

    /// The slot of `content-range`, read when a download resumes.
    package static let contentRangeIndex = 7

    private var contentLength, contentType, dockerContentDigest, location, retryAfter, wwwAuthenticate, link,
        contentRange: String?

    /// A `Content-Length` value as Go's HTTP client reads one: decimal
    /// digits only (no sign, no second value), at most 2^63 - 1; nil
    /// otherwise, where Go's client fails the request.
    package static func length(_ value: String) -> Int? {
        guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return Int(value)
    }

    package init() {}

    /// The values of `headers` (names in any case) that are kept.
    package init(_ headers: [String: String]) {
        for (name, value) in headers {
            guard let index = Array(name.utf8).withUnsafeBytes({ Self.index(of: $0) }) else { continue }
            self[index] = value
        }
    }

    /// The value of the header `name` (any case), if it came and is kept.
    package func value(_ name: String) -> String? {
        var name = name
        return name.withUTF8 { Self.index(of: UnsafeRawBufferPointer($0)) }.flatMap { self[$0] }
    }

    /// The value in the slot of `names[index]`.
    package subscript(index: Int) -> String? {
        get {
            switch index {
            case 0: contentLength
            case 1: contentType
            case 2: dockerContentDigest
            case 3: location
            case 4: retryAfter
            case 5: wwwAuthenticate
            case 6: link
            default: contentRange
            }
        }
        set {
            switch index {
            case 0: contentLength = newValue
            case 1: contentType = newValue
            case 2: dockerContentDigest = newValue
            case 3: location = newValue
            case 4: retryAfter = newValue
            case 5: wwwAuthenticate = newValue
            case 6: link = newValue
            default: contentRange = newValue
            }
        }
    }

    /// The index in `names` of `name` (compared without case), or nil.
    package static func index(of name: UnsafeRawBufferPointer) -> Int? {
        // The one kept name of this length (a test checks they match `names`).
        let (index, kept): (Int, StaticString)
        switch name.count {
        case 14: (index, kept) = (0, "content-length")
        case 12: (index, kept) = (1, "content-type")
        case 21: (index, kept) = (2, "docker-content-digest")
        case 8: (index, kept) = (3, "location")
        case 11: (index, kept) = (4, "retry-after")
        case 16: (index, kept) = (5, "www-authenticate")
        case 4: (index, kept) = (6, "link")
        case 13: (index, kept) = (7, "content-range")
        default: return nil
        }
        let keptBytes = kept.utf8Start
        for offset in 0..<name.count {
            // Names are ASCII (RFC 9110): lower-cased byte by byte.
            let byte = name[offset]
            guard keptBytes[offset] == (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) else { return nil }
        }
        return index
    }
}
