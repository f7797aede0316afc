import FoundationEssentials
import Glibc

/// Whether the environment names a proxy the way libcurl reads it
/// (`http_proxy`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY`).
/// When none is set, transfers say "no proxy" once, at handle set-up,
/// rather than have libcurl search the environment on every transfer.
enum ProxyEnvironment {
    /// The variables whose presence (even empty) leaves proxies to libcurl.
    /// `HTTP_PROXY`, which curl ignores, counts too: with it set, the
    /// decision stays libcurl's, as it was before this shortcut.
    static let names = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]

    /// Read once: the server never changes its own environment. (Six
    /// `getenv`s, rather than a dictionary of the whole environment, which
    /// costs a process's start more.)
    static let isSet = isSet(where: { getenv($0) != nil })

    static func isSet(in environment: [String: String]) -> Bool {
        isSet(where: { environment[$0] != nil })
    }

    private static func isSet(where present: (String) -> Bool) -> Bool {
        names.contains(where: present)
    }
}
