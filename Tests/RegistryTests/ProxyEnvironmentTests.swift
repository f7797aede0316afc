import Testing
@testable import Registry

/// When the environment names no proxy, transfers say "no proxy" up front;
/// any proxy variable curl reads, even empty, leaves proxies to libcurl.
@Suite struct ProxyEnvironmentTests {
    @Test func anyProxyVariableCurlReadsCounts() {
        for name in ["http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
            #expect(ProxyEnvironment.isSet(in: [name: "http://proxy:3128"]), "\(name)")
            #expect(ProxyEnvironment.isSet(in: [name: ""]), "\(name) set but empty")
        }
    }

    @Test func otherVariablesDoNot() {
        #expect(!ProxyEnvironment.isSet(in: [:]))
        #expect(!ProxyEnvironment.isSet(in: ["NO_PROXY": "example.com", "no_proxy": "*", "PATH": "/usr/bin"]))
    }
}
