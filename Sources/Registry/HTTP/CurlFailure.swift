/// Why a transfer ended without a response.
struct CurlFailure: Error, Sendable {
    enum Kind: Sendable {
        case timeout, tls, connection, cancelled, localFile, library, tooLarge, headersTooLarge, memoryLimit
        case downloadLimit
        /// A registry on the public internet redirected a request to an
        /// address of a local network (the message is that address).
        case localAddressRefused
    }
    let kind: Kind
    let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static let cancelled = CurlFailure(.cancelled, "cancelled")
}
