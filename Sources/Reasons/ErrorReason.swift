/// Every `error.data.reason` the server can give: the contract's vocabulary
/// of why a request failed, one level finer than the error code.
///
/// Each layer throws errors that carry one of these (`RegistryError`,
/// `ArchiveError`, `RPCError`), so a reason is chosen where the failure is
/// understood and never re-spelled on the way up. `protocol/openrpc.json`
/// lists every case under `ErrorData.reason`; a test keeps the two equal.
public enum ErrorReason: String, Sendable, CaseIterable, Equatable {
    // -32700: the input was not JSON, or not a frame.
    case invalidJSON = "invalid_json"
    case invalidFrame = "invalid_frame"
    // -32600: not a request, or not one the server takes now.
    case notARequest = "not_a_request"
    case messageTooLarge = "message_too_large"
    case shuttingDown = "shutting_down"
    // -32601
    case unknownMethod = "unknown_method"
    // -32602: the params.
    case invalidReference = "invalid_reference"
    case digestRequired = "digest_required"
    case invalidPaths = "invalid_paths"
    case wrongType = "wrong_type"
    case missingParam = "missing_param"
    case unknownParam = "unknown_param"
    case wrongArity = "wrong_arity"
    case invalidEncoding = "invalid_encoding"
    case invalidPlatform = "invalid_platform"
    // -32603, and -32004 for a local file the download could not use.
    case `internal` = "internal"
    case ioError = "io_error"
    // -32800
    case cancelled = "cancelled"
    // -32001: what the registry said it does not have.
    case manifestUnknown = "manifest_unknown"
    case blobUnknown = "blob_unknown"
    case nameUnknown = "name_unknown"
    // -32002
    case unauthorized = "unauthorized"
    case denied = "denied"
    case blocked = "blocked"
    case localAddressRefused = "local_address_refused"
    // -32003
    case digestMismatch = "digest_mismatch"
    case sizeMismatch = "size_mismatch"
    // -32004
    case connectionFailed = "connection_failed"
    case timeout = "timeout"
    case tls = "tls"
    case serverError = "server_error"
    case rateLimited = "rate_limited"
    /// The Referrers API answered 400 or 406, or a first page that is not
    /// an OCI index: an error here (the spec falls back only on a 404),
    /// where the original reads the referrers tag instead, so it must
    /// never read as the registry's outage.
    case referrersUnsupported = "referrers_unsupported"
    // -32005: a limit of SECURITY.md.
    case manifestTooLarge = "manifest_too_large"
    case entryTooLarge = "entry_too_large"
    case archiveTooLarge = "archive_too_large"
    case blobTooLarge = "blob_too_large"
    case nameTooLong = "name_too_long"
    case decompressionLimit = "decompression_limit"
    case yamlTooLarge = "yaml_too_large"
    case responseTooLarge = "response_too_large"
    case headersTooLarge = "headers_too_large"
    case memoryLimit = "memory_limit"
    case descriptorLimit = "descriptor_limit"
    case threadLimit = "thread_limit"
    case downloadLimit = "download_limit"
    case tooManyPages = "too_many_pages"
    case tooManyLayers = "too_many_layers"
    /// An image looked for through more indexes, each another's entry,
    /// than the server follows.
    case tooManyIndexes = "too_many_indexes"
    case jsonTooDeep = "json_too_deep"
    /// A registry still answering, at more than the minimum rate, when the
    /// request's whole time (`--request-timeout`) ran out: a large blob,
    /// which the original reads however long it takes.
    case requestTimeout = "request_timeout"
    // -32006: content the method cannot use.
    case unexpectedMediaType = "unexpected_media_type"
    case noMatchingPlatform = "no_matching_platform"
    case ambiguousPlatform = "ambiguous_platform"
    case ambiguousYAML = "ambiguous_yaml"
    /// A manifest, config or referrers page that Go reads otherwise than an
    /// exact lookup of its keys (a field given twice, which Go merges; a key
    /// in other letters, which Go takes for the field), or a document that
    /// is both an image manifest and an index (which the original reads as
    /// its `Content-Type` says): the original answers, so this refusal must
    /// never read as the content's absence.
    case ambiguousManifest = "ambiguous_manifest"
    /// A layer the registry does not hold whose descriptor names URLs where
    /// its bytes are (and embeds none), which the original fetches and
    /// the server does not.
    case foreignLayer = "foreign_layer"
    /// An image whose config the registry does not hold (and its
    /// descriptor does not embed): `image_files` cannot check the layers
    /// against it, and no runtime can run the image; the original reads
    /// the layers without it, so this must never read as absence.
    case missingConfig = "missing_config"
    case binaryContent = "binary_content"
    case notJSON = "not_json"
    case corruptArchive = "corrupt_archive"
    case invalidManifest = "invalid_manifest"
    case invalidPageLink = "invalid_page_link"

    /// A limit on what the calls in flight hold together (memory, the
    /// downloads' disk, file descriptors): the server's own, free again as
    /// other calls end. A call refused by one is retryable but not retried
    /// at once, and a batch stops with it rather than leave the ref out as
    /// one that failed.
    public var isHeldByCallsInFlight: Bool {
        self == .memoryLimit || self == .downloadLimit || self == .descriptorLimit
    }
}
