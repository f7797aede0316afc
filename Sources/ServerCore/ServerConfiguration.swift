import Glibc
import Logging

/// Every setting of the server, with the defaults users get when they set
/// nothing. Filled from the command line and `OCIRPC_*` variables by
/// `ConfigurationParser`.
public struct ServerConfiguration: Sendable, Equatable {
    /// Bounded workers for registry work (the batch method's fan-out).
    public var maxConcurrency: Int = ServerConfiguration.defaultMaxConcurrency
    /// Byte budget of the content cache.
    public var cacheBytes: Int = 256 << 20
    /// How long a tag -> digest resolution is trusted, in seconds.
    public var tagTTL: Double = 60
    /// The platform chosen from an image index: `os/arch[/variant]`.
    public var platform: String = "linux/amd64"
    /// Registries spoken to over plain HTTP besides the loopback and
    /// private addresses.
    public var insecureRegistries: [String] = []
    /// Registries spoken to over HTTPS even on loopback or a private address.
    public var secureRegistries: [String] = []
    /// A PEM bundle of trusted CAs instead of the system's.
    public var caFile: String?
    /// Seconds of silence (or of under 1 KiB/s) before a registry request fails.
    public var timeout: Double = 30
    /// Seconds one registry request may take in all, retries included.
    public var requestTimeout: Double = 600
    /// Bytes one request may decompress, all its layers together.
    public var maxDecompressedBytes: Int = 8 << 30
    /// Retries for connection errors, 429 and 502/503/504.
    public var retries: Int = 3
    /// Registry mirrors, `REGISTRY=MIRROR`, tried in order before the registry.
    public var mirrors: [String] = []
    /// Mirrors and insecure registries read from `--registries-conf`,
    /// used after those of the flags.
    public var registriesConf = RegistriesConf()
    public var logLevel: LogLevel = .info
    public var logFormat: LogFormat = .text
    /// Largest accepted input message, in bytes.
    public var maxMessageBytes: Int = 64 << 20

    public init() {}

    /// max(8, 4 x cores).
    public static var defaultMaxConcurrency: Int {
        max(8, 4 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}
