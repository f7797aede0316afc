import Glibc

/// Whether an IP address is on the public internet, or on a network of its
/// own (loopback, private, link-local where cloud metadata services answer,
/// shared, multicast, reserved). A registry on the public internet may not
/// redirect a request into the local network (`CurlTransfer`): whoever
/// controls it could otherwise make the server ask internal services for
/// whatever it likes.
package enum AddressClass {
    /// Whether `address` (IPv4 or IPv6 text, as libcurl gives it) is a
    /// public one. Text that is not an address is not public.
    package static func isPublic(_ address: UnsafePointer<CChar>) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return isPublicIPv4(UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return false }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        return isPublicIPv6(bytes)
    }

    /// Whether the socket address at `address` (a `sockaddr_in` or
    /// `sockaddr_in6`, as `family` says) is public; any other family is not.
    package static func isPublic(socketAddress address: UnsafeRawPointer, family: Int32) -> Bool {
        switch family {
        case AF_INET:
            return isPublicIPv4(UInt32(bigEndian: address.loadUnaligned(as: sockaddr_in.self).sin_addr.s_addr))
        case AF_INET6:
            let v6 = address.loadUnaligned(as: sockaddr_in6.self).sin6_addr
            return isPublicIPv6(withUnsafeBytes(of: v6) { Array($0) })
        default:
            return false
        }
    }

    /// The text of the socket address at `address` (`inet_ntop`), for messages.
    package static func text(socketAddress address: UnsafeRawPointer, family: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let offset =
            family == AF_INET6
            ? MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)! : MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!
        guard family == AF_INET || family == AF_INET6,
            inet_ntop(family, address + offset, &buffer, socklen_t(buffer.count)) != nil
        else { return "an address of family \(family)" }
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: text, as: UTF8.self)
    }

    /// Whether `address` (host order) is public.
    static func isPublicIPv4(_ address: UInt32) -> Bool {
        !isLoopbackOrPrivateIPv4(address) && !otherLocalIPv4Networks.contains { Self.address(address, within: $0) }
    }

    /// Whether `address` (host order) is loopback (127/8) or private (RFC
    /// 1918): where a registry is spoken to over plain HTTP unless told
    /// otherwise (`RegistryScheme`).
    static func isLoopbackOrPrivateIPv4(_ address: UInt32) -> Bool {
        loopbackAndPrivateIPv4Networks.contains { Self.address(address, within: $0) }
    }

    private static func address(_ address: UInt32, within network: (UInt32, UInt32)) -> Bool {
        address >> (32 - network.1) == network.0 >> (32 - network.1)
    }

    /// Loopback and private IPv4 networks: (address, prefix length).
    private static let loopbackAndPrivateIPv4Networks: [(UInt32, UInt32)] = [
        (0x7F00_0000, 8),  // 127.0.0.0/8, loopback
        (0x0A00_0000, 8),  // 10.0.0.0/8, private
        (0xAC10_0000, 12),  // 172.16.0.0/12, private
        (0xC0A8_0000, 16),  // 192.168.0.0/16, private
    ]

    /// The other IPv4 networks that are not public.
    private static let otherLocalIPv4Networks: [(UInt32, UInt32)] = [
        (0x0000_0000, 8),  // 0.0.0.0/8, "this network"
        (0x6440_0000, 10),  // 100.64.0.0/10, shared (carrier NAT)
        (0xA9FE_0000, 16),  // 169.254.0.0/16, link-local (cloud metadata)
        (0xC000_0000, 24),  // 192.0.0.0/24, protocol assignments
        (0xC000_0200, 24),  // 192.0.2.0/24, documentation
        (0xC612_0000, 15),  // 198.18.0.0/15, benchmarking
        (0xC633_6400, 24),  // 198.51.100.0/24, documentation
        (0xCB00_7100, 24),  // 203.0.113.0/24, documentation
        (0xE000_0000, 4),  // 224.0.0.0/4, multicast
        (0xF000_0000, 4),  // 240.0.0.0/4, reserved and broadcast
    ]

    /// The IPv4 address (host order) `text` is in canonical dotted
    /// decimal (`inet_pton`: no leading zeros, no octal or hex), or nil.
    static func ipv4(_ text: some Collection<UInt8>) -> UInt32? {
        guard text.count <= 15 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 16) { buffer -> UInt32? in
            var end = 0
            for byte in text {
                buffer[end] = CChar(bitPattern: byte)
                end += 1
            }
            buffer[end] = 0
            var v4 = in_addr()
            guard inet_pton(AF_INET, buffer.baseAddress!, &v4) == 1 else { return nil }
            return UInt32(bigEndian: v4.s_addr)
        }
    }

    /// Whether the 16 bytes of an IPv6 address are public. An address that
    /// carries an IPv4 one (mapped, NAT64, 6to4) is as public as that one.
    static func isPublicIPv6(_ bytes: [UInt8]) -> Bool {
        func ipv4(at offset: Int) -> UInt32 {
            bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
        }
        let allZero = bytes[0..<10].allSatisfy { $0 == 0 }
        if allZero && bytes[10] == 0xFF && bytes[11] == 0xFF { return isPublicIPv4(ipv4(at: 12)) }  // ::ffff:0:0/96
        if allZero && bytes[10] == 0 && bytes[11] == 0 { return false }  // ::/96: ::, ::1, IPv4-compatible
        // 64:ff9b::/96, NAT64
        if Array(bytes[0..<12]) == [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] { return isPublicIPv4(ipv4(at: 12)) }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return isPublicIPv4(ipv4(at: 2)) }  // 2002::/16, 6to4
        if bytes[0] & 0xFE == 0xFC { return false }  // fc00::/7, unique local
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return false }  // fe80::/10, link-local
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0 { return false }  // fec0::/10, site-local (deprecated)
        if bytes[0] == 0xFF { return false }  // ff00::/8, multicast
        // 2001:db8::/32, documentation
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return false }
        return true
    }
}
