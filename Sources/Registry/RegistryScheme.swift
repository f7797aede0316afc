/// Decides between `http` and `https` for a registry host.
///
/// Plain HTTP for `localhost`, `127.0.0.0/8`, `[::1]`, RFC 1918 private
/// addresses and the registries named with `--insecure-registry`; HTTPS for
/// everything else, and for the registries named with `--secure-registry`
/// (a private-address registry with TLS). Asked once per request, so it
/// works on bytes.
public struct RegistryScheme: Sendable {
    private let insecure: Set<String>
    private let secure: Set<String>

    public init(insecureRegistries: [String] = [], secureRegistries: [String] = []) {
        insecure = Set(insecureRegistries.map { $0.lowercased() })
        secure = Set(secureRegistries.map { $0.lowercased() })
    }

    /// `"http"` or `"https"` for `registry` (`host[:port]`).
    public func scheme(for registry: String) -> String {
        let bytes = Array(registry.utf8)
        let host = Self.host(of: bytes)
        if !secure.isEmpty || !insecure.isEmpty {
            let lowered = registry.lowercased()
            let loweredHost = String(decoding: host, as: UTF8.self).lowercased()
            if secure.contains(lowered) || secure.contains(loweredHost) { return "https" }
            if insecure.contains(lowered) || insecure.contains(loweredHost) { return "http" }
        }
        return Self.isLocalOrPrivate(host) ? "http" : "https"
    }

    /// The host part of `host[:port]` (brackets kept for IPv6).
    static func host(of registry: [UInt8]) -> ArraySlice<UInt8> {
        if registry.first == UInt8(ascii: "["), let close = registry.firstIndex(of: UInt8(ascii: "]")) {
            return registry[...close]
        }
        if let colon = registry.lastIndex(of: UInt8(ascii: ":")) { return registry[..<colon] }
        return registry[...]
    }

    private static let localhost = Array("localhost".utf8)

    static func isLocalOrPrivate(_ host: ArraySlice<UInt8>) -> Bool {
        // ASCII letters compared without case (`| 0x20` lower-cases letters
        // and turns no other byte into one).
        if host.count == 9, host.indices.allSatisfy({ host[$0] | 0x20 == Self.localhost[$0 - host.startIndex] }) {
            return true
        }
        if host.elementsEqual("[::1]".utf8) { return true }
        // Only a canonical dotted quad: curl reads `010.0.0.1` as octal
        // (8.0.0.1), so a leading zero must not make an address look private.
        return AddressClass.ipv4(host).map(AddressClass.isLoopbackOrPrivateIPv4) ?? false
    }
}
