/// Decides between `http` and `https` for a registry host.
///
/// Plain HTTP for `localhost`, `127.0.0.0/8`, `[::1]`, RFC 1918 private
/// addresses and the registries named with `--insecure-registry`; HTTPS for
/// everything else, and for the registries named with `--secure-registry`
/// (a private-address registry with TLS).
public struct RegistryScheme: Sendable {
    private let insecure: Set<String>
    private let secure: Set<String>

    public init(insecureRegistries: [String] = [], secureRegistries: [String] = []) {
        insecure = Set(insecureRegistries.map { $0.lowercased() })
        secure = Set(secureRegistries.map { $0.lowercased() })
    }

    /// `"http"` or `"https"` for `registry` (`host[:port]`).
    public func scheme(for registry: String) -> String {
        let lowered = registry.lowercased()
        if secure.contains(lowered) || secure.contains(Self.host(of: lowered)) { return "https" }
        if insecure.contains(lowered) || insecure.contains(Self.host(of: lowered)) { return "http" }
        return Self.isLocalOrPrivate(Self.host(of: lowered)) ? "http" : "https"
    }

    /// The host part of `host[:port]` (brackets kept for IPv6).
    static func host(of registry: String) -> String {
        if registry.hasPrefix("["), let close = registry.firstIndex(of: "]") {
            return String(registry[...close])
        }
        if let colon = registry.lastIndex(of: ":") { return String(registry[..<colon]) }
        return registry
    }

    static func isLocalOrPrivate(_ host: String) -> Bool {
        if host == "localhost" || host == "[::1]" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard octets.count == 4, octets.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= 255 }) else { return false }
        let a = octets[0]!, b = octets[1]!
        return a == 127 || a == 10 || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
    }
}
