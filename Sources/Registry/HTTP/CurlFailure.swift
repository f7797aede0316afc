/// Why a transfer ended without a response.
struct CurlFailure: Error, Sendable {
    enum Kind: Sendable {
        case timeout, tls, connection, cancelled, localFile, library, tooLarge, headersTooLarge, memoryLimit
        case downloadLimit
    }
    let kind: Kind
    let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static let cancelled = CurlFailure(.cancelled, "cancelled")
}
