import FoundationEssentials
import Glibc
import Memory

/// One HTTP request to a registry or token server.
package struct HTTPRequest: Sendable {
    package var method: String
    /// The absolute URL, as sent.
    package var url: String
    /// The headers, in the order they were set (as sent).
    package private(set) var headers: [Header] = []
    package var body: Data?
    /// Whether it may go only to a public address (`AddressClass`): a
    /// token realm that a registry on the public internet names.
    package var onlyPublicAddresses = false
    /// Whether a redirect may lead into a local network whatever the
    /// registry's address: one the user lets (`--allow-local-redirects`).
    package var mayEnterLocalNetworks = false

    /// A request for `url`, an absolute `http` or `https` URL whose
    /// characters need no escaping (the caller has checked it).
    package init(_ method: String = "GET", url: String) {
        self.method = method
        self.url = url
    }

    package init(_ method: String = "GET", url: URL) {
        self.init(method, url: url.absoluteString)
    }

    /// `host[:port]` of the URL, for messages.
    package var authority: String { Self.authority(of: url) }

    /// `scheme://host[:port]` of the URL, lower-cased.
    package var origin: String { Self.origin(of: url) }

    /// `scheme://host[:port]` of `url`, lower-cased.
    package static func origin(of url: String) -> String {
        let scheme = url.prefix { $0 != ":" }
        return (scheme + "://" + authority(of: url)).lowercased()
    }

    /// `host[:port]` of `url`.
    package static func authority(of url: String) -> String {
        let bytes = Array(url.utf8)
        var start = 0
        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes[colon...].starts(with: [0x3A, 0x2F, 0x2F]) {
            start = colon + 3
        }
        let end = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.endIndex
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// One request header.
    package struct Header: Sendable, Equatable {
        package let name: String
        package let value: String

        package init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }

        /// Whether `text` can be a header's value as Go's `net/http` sends
        /// one (`httpguts.ValidHeaderFieldValue`): no control character but
        /// the tab. A token server's token is held to it.
        package static func isSendableValue(_ text: String) -> Bool {
            text.utf8.allSatisfy { $0 >= 0x20 ? $0 != 0x7F : $0 == 0x09 }
        }
    }

    /// Sets (or, with nil, removes) a header; names are case-insensitive.
    /// A request has a handful of headers: a list, not a table made per
    /// request.
    package mutating func setHeader(_ name: String, _ value: String?) {
        if !headers.isEmpty {
            let lowered = name.lowercased()
            headers.removeAll { $0.name.lowercased() == lowered }
        }
        if let value { headers.append(Header(name, value)) }
    }
}

/// A response with its body in memory (manifests, tokens, error bodies).
package struct HTTPResponse: Sendable {
    package let status: Int
    /// The headers the client reads (of the last response, after redirects).
    package let headers: ResponseHeaders
    package let body: [UInt8]
    /// For a 401 answer, the URL that gave it (after redirects): a
    /// challenge is learnt only from the registry's own origin.
    package let challengeURL: String?
    /// What `body` holds of the memory budget, taken as it arrived; given
    /// back when the last copy of the response, or of what keeps the body
    /// charged (`FetchedManifest.charge`), goes. Nil when nothing counts it.
    package let bodyCharge: MemoryShare?
    /// Whether it came from a public address (`AddressClass`): a challenge
    /// it carries may then name a token realm at public addresses only.
    package let fromPublicAddress: Bool

    package init(
        status: Int, headers: ResponseHeaders, body: [UInt8], challengeURL: String? = nil,
        bodyCharge: MemoryShare? = nil, fromPublicAddress: Bool = false
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.challengeURL = challengeURL
        self.bodyCharge = bodyCharge
        self.fromPublicAddress = fromPublicAddress
    }

    /// A response with the kept ones of `headers` (names in any case).
    package init(status: Int, headers: [String: String], body: [UInt8], challengeURL: String? = nil) {
        self.init(status: status, headers: ResponseHeaders(headers), body: body, challengeURL: challengeURL)
    }

    /// The value of the header `name` (any case), if it is one of `ResponseHeaders.names`.
    package func header(_ name: String) -> String? { headers.value(name) }

    /// The `Content-Type` without parameters (`""` when absent).
    package var mediaType: String {
        guard var value = header("Content-Type") else { return "" }
        // Usually the value is the type alone: then it is the answer as it is.
        let plain = value.withUTF8 { utf8 in
            utf8.allSatisfy { $0 != UInt8(ascii: ";") && $0 != UInt8(ascii: " ") && $0 != 0x09 }
        }
        if plain { return value }
        return value.withUTF8 { utf8 in
            let type = utf8.prefix { $0 != UInt8(ascii: ";") }
            func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            let start = type.firstIndex { !isSpace($0) } ?? type.endIndex
            let end = type.lastIndex { !isSpace($0) }.map { $0 + 1 } ?? start
            return String(decoding: UnsafeBufferPointer(rebasing: utf8[start..<max(start, end)]), as: UTF8.self)
        }
    }
}
