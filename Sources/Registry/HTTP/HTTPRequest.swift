import Foundation

/// One HTTP request to a registry or token server.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    /// Header values by name (as sent).
    public private(set) var headers: [String: String] = [:]
    public var body: Data?

    public init(_ method: String = "GET", url: URL) {
        self.method = method
        self.url = url
    }

    /// Sets (or, with nil, removes) a header; names are case-insensitive.
    public mutating func setHeader(_ name: String, _ value: String?) {
        if let existing = headers.keys.first(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) {
            headers[existing] = nil
        }
        if let value { headers[name] = value }
    }
}

/// A response with its body in memory (manifests, tokens, error bodies).
public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header values by lower-cased name (of the last response, after redirects).
    public let headers: [String: String]
    public let body: Data
    /// The URL that answered (after redirects).
    public let url: URL?

    public init(status: Int, headers: [String: String], body: Data, url: URL?) {
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The `Content-Type` without parameters (`""` when absent).
    public var mediaType: String {
        guard let value = header("Content-Type") else { return "" }
        let type = value.utf8.prefix { $0 != UInt8(ascii: ";") }
        let start = type.firstIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") } ?? type.endIndex
        let end = type.lastIndex { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }.map { type.index(after: $0) } ?? start
        return String(Substring(type[start..<max(start, end)]))
    }
}
