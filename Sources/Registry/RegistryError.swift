import Reasons

/// One entry of a registry's error body, `{"errors":[{"code","message"}]}`.
public struct RegistryErrorDetail: Sendable, Equatable {
    public let code: String
    public let message: String
}

/// Why a registry operation failed, with what the registry itself said.
///
/// `kind` is what callers decide on; `reason` is the contract's snake_case
/// reason (`manifest_unknown`, `unauthorized`, `timeout`, ...). Messages never
/// contain credentials or tokens.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case notFound, accessDenied, integrity, unavailable, limitExceeded, unsupported, invalidReference
        /// A failure of this machine or of the server, not of the
        /// registry: the downloads' directory or its disk (full, read-only,
        /// unsafe), libcurl (not loaded, out of memory), a request the
        /// server refused to send. Never the registry's word: the original
        /// builtins (which keep no download on disk) would have answered.
        case `internal`
        /// The request was cancelled: not a failure of the registry, never retried or cached.
        case cancelled
    }

    public var kind: Kind
    public var reason: ErrorReason
    public var message: String
    public var httpStatus: Int?
    public var registryErrors: [RegistryErrorDetail]
    public var retryable: Bool

    public init(
        _ kind: Kind, reason: ErrorReason, message: String, httpStatus: Int? = nil,
        registryErrors: [RegistryErrorDetail] = [], retryable: Bool = false
    ) {
        self.kind = kind
        self.reason = reason
        self.message = message
        self.httpStatus = httpStatus
        self.registryErrors = registryErrors
        self.retryable = retryable
    }

    public var description: String { "\(reason.rawValue): \(message)" }
}
