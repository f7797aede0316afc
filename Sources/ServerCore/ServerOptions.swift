import Logging
import Memory
import Options

/// The server's own settings: logging and the largest message it reads.
/// Modules bring theirs (`ServerModule.options`).
public struct ServerOptions: OptionSection, Equatable {
    public var logLevel: LogLevel = .info
    public var logFormat: LogFormat = .text
    /// Largest accepted input message, in bytes.
    public var maxMessageBytes: Int = 64 << 20
    /// What the calls in flight may hold in memory together (`MemoryBudget`).
    /// By default 2 GiB, or half a container's memory limit, or of what
    /// `ulimit -v` or `ulimit -d` leaves, when lower (`MemoryLimit`).
    public var maxMemoryBytes: Int = MemoryBudget.defaultLimit(within: MemoryLimit.current)

    public init() {}

    /// The options, as `--help` lists them.
    public static let options: [CommandOption] = [
        CommandOption(
            Self.self, flag: "--log-level", variable: "OCIRPC_LOG_LEVEL", valueName: "LEVEL",
            help: "debug, info, warn or error (default info); logs go to stderr"
        ) { o, v throws(ConfigurationError) in
            guard let level = LogLevel(name: v) else {
                throw ConfigurationError(message: "--log-level: expected debug, info, warn or error, got '\(v)'")
            }
            o.logLevel = level
        },
        CommandOption(
            Self.self, flag: "--log-format", variable: "OCIRPC_LOG_FORMAT", valueName: "FORMAT",
            help: "text or json (default text)"
        ) { o, v throws(ConfigurationError) in
            guard let format = LogFormat(rawValue: v) else {
                throw ConfigurationError(message: "--log-format: expected text or json, got '\(v)'")
            }
            o.logFormat = format
        },
        CommandOption(
            Self.self, flag: "--max-message-bytes", variable: "OCIRPC_MAX_MESSAGE_BYTES", valueName: "SIZE",
            help: "largest accepted message (default 64MiB)"
        ) { o, v throws(ConfigurationError) in
            o.maxMessageBytes = try OptionValue.byteSize(v, "--max-message-bytes", allowZero: false, max: 1 << 30)
        },
        CommandOption(
            Self.self, flag: "--max-memory-bytes", variable: "OCIRPC_MAX_MEMORY_BYTES", valueName: "SIZE",
            help:
                "what the calls in flight may hold in memory together: files, blobs and manifests read, answers written (default 2GiB, or half a container's memory limit, or of what ulimit -v leaves past 512MiB or ulimit -d past the threads' stacks, when lower); past it a call fails with memory_limit, retryable"
        ) { o, v throws(ConfigurationError) in
            o.maxMemoryBytes = try OptionValue.byteSize(v, "--max-memory-bytes", allowZero: false, max: 1 << 40)
        },
    ]
}
