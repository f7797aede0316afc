import Testing
@testable import Registry

/// Which addresses count as the public internet, where a redirect may not
/// lead into a local network.
@Suite struct AddressClasses {
    @Test(arguments: [
        "93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.63.255.255", "100.128.0.0",
        "169.253.255.255", "192.169.0.1", "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:93.184.216.34",
        "64:ff9b::808:808", "2002:5db8:d822::1",
    ])
    func publicAddresses(address: String) {
        #expect(AddressClass.isPublic(address))
    }

    @Test(arguments: [
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250",
        "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8",
        "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1", "2001:db8::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.1.2.3", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
        "::127.0.0.1", "not an address", "", "127.1", "0x7f.0.0.1", "2130706433",
    ])
    func addressesOfALocalNetworkOrNoneAreNotPublic(address: String) {
        #expect(!AddressClass.isPublic(address))
    }
}

extension AddressClass {
    static func isPublic(_ text: String) -> Bool { text.withCString { isPublic($0) } }
}
