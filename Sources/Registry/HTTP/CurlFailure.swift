/// Why a transfer ended without a response.
struct CurlFailure: Error, Sendable {
    enum Kind: Sendable {
        case timeout, tls, connection, cancelled, localFile, library, tooLarge, headersTooLarge, memoryLimit
        case downloadLimit
        /// The server had no file descriptor to spare (`DescriptorReserve`).
        case descriptorLimit
        /// The engine's thread could not start (a limit on tasks).
        case threadLimit
        /// A resumed download was answered with a range other than the one
        /// asked for (the message says which).
        case wrongRange
        /// A registry on the public internet redirected a request to an
        /// address of a local network (the message is that address).
        case localAddressRefused
        /// A request header holds a line break or a NUL
        /// (`KeptHeaderLists.make`); the request was not sent.
        case unsendableHeader
        /// The transfer's whole time ran out while the registry was still
        /// answering at more than the minimum rate (the message says how
        /// much came): the server's limit, not the registry's silence.
        case deadline
    }
    let kind: Kind
    let message: String
    /// What a download that broke off kept, for the next attempt to resume.
    let partial: PartialDownload?

    init(_ kind: Kind, _ message: String, partial: PartialDownload? = nil) {
        self.kind = kind
        self.message = message
        self.partial = partial
    }

    static let cancelled = CurlFailure(.cancelled, "cancelled")
}
