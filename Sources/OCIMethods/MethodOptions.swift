import DiskCaching
import Glibc
import Options
import Memory
import RPCDispatch

/// The methods' settings: the batch's workers, the content cache's budget,
/// the tag TTL, the default platform and the decompression budget.
public struct MethodOptions: OptionSection, Equatable {
    /// Bounded workers for registry work (the batch method's fan-out).
    var maxConcurrency = MethodOptions.defaultMaxConcurrency
    /// Byte budget of the content cache.
    /// 256 MiB, or an eighth of a container's memory limit, or of what
    /// `ulimit -v` or `ulimit -d` leaves, when lower (`MemoryLimit`).
    var cacheBytes = min(256 << 20, (MemoryLimit.current ?? .max) / 8)
    /// How long a tag -> digest answer is trusted, in seconds.
    var tagTTL = 60.0
    /// The platform chosen from an image index when a call names none.
    var platform = Platform.linuxAMD64
    /// Bytes one request may decompress, all its layers together.
    var maxDecompressedBytes = ContentService.defaultMaxDecompressedBytes
    /// Where manifests and tag answers are kept across processes.
    var cacheDirectory = CacheDirectory.standard
    /// Bytes of content the disk cache keeps.
    var diskCacheBytes = DiskCache.defaultBudget

    /// The disk cache's place (`--cache-dir`).
    enum CacheDirectory: Equatable, Sendable {
        /// `$XDG_CACHE_HOME/ocirpc`, else `~/.cache/ocirpc`.
        case standard
        case path(String)
        /// No disk cache (`--cache-dir none`).
        case none

        /// The directory for `environment`, nil for none.
        func resolved(_ environment: [String: String]) -> String? {
            switch self {
            case .none: return nil
            case .path(let path): return path
            case .standard:
                if let base = environment["XDG_CACHE_HOME"], base.hasPrefix("/") { return base + "/ocirpc" }
                if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.cache/ocirpc" }
                return nil
            }
        }
    }

    public init() {}

    /// max(8, 4 x cores).
    static var defaultMaxConcurrency: Int {
        max(8, 4 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// The options, as `--help` lists them.
    public static let options: [CommandOption] = [
        CommandOption(
            Self.self, flag: "--max-concurrency", variable: "OCIRPC_MAX_CONCURRENCY", valueName: "N",
            help: "bounded registry workers (default max(8, 4 x cores))"
        ) { o, v throws(ConfigurationError) in
            o.maxConcurrency = try OptionValue.positiveInt(v, "--max-concurrency")
        },
        CommandOption(
            Self.self, flag: "--cache-bytes", variable: "OCIRPC_CACHE_BYTES", valueName: "SIZE",
            help:
                "content cache budget, e.g. 256MiB (default 256MiB, or an eighth of a container's memory limit, or of what ulimit -v leaves past 512MiB or ulimit -d past the threads' stacks, when lower)"
        ) { o, v throws(ConfigurationError) in
            o.cacheBytes = try OptionValue.byteSize(v, "--cache-bytes", allowZero: true, max: 64 << 30)
        },
        CommandOption(
            Self.self, flag: "--tag-ttl", variable: "OCIRPC_TAG_TTL", valueName: "DURATION",
            help: "how long a tag -> digest answer is reused, e.g. 60s (default 60s)"
        ) {
            o, v throws(ConfigurationError) in
            o.tagTTL = try OptionValue.duration(v, "--tag-ttl", allowZero: true, max: 30 * 86_400)
        },
        CommandOption(
            Self.self, flag: "--platform", variable: "OCIRPC_PLATFORM", valueName: "OS/ARCH[/VARIANT]",
            help: "platform picked from image indexes (default linux/amd64)"
        ) { o, v throws(ConfigurationError) in
            do throws(RPCError) {
                o.platform = try Platform(v)
            } catch {
                throw ConfigurationError(message: "--platform: expected os/arch or os/arch/variant, got '\(v)'")
            }
        },
        CommandOption(
            Self.self, flag: "--max-decompressed-bytes", variable: "OCIRPC_MAX_DECOMPRESSED_BYTES",
            valueName: "SIZE", help: "bytes one request may decompress, all layers together (default 8GiB)"
        ) {
            o, v throws(ConfigurationError) in
            o.maxDecompressedBytes = try OptionValue.byteSize(
                v, "--max-decompressed-bytes", allowZero: false, max: 1 << 40)
        },
        CommandOption(
            Self.self, flag: "--disk-cache-bytes", variable: "OCIRPC_DISK_CACHE_BYTES", valueName: "SIZE",
            help: "content the disk cache keeps, least recently used out first (default 2GiB)"
        ) { o, v throws(ConfigurationError) in
            o.diskCacheBytes = try OptionValue.byteSize(v, "--disk-cache-bytes", allowZero: false, max: 1 << 40)
        },
        CommandOption(
            Self.self, flag: "--cache-dir", variable: "OCIRPC_CACHE_DIR", valueName: "PATH|none",
            help: "manifests and tag answers kept across runs (default $XDG_CACHE_HOME/ocirpc or ~/.cache/ocirpc)"
        ) { o, v throws(ConfigurationError) in
            if v == "none" {
                o.cacheDirectory = .none
            } else {
                guard v.hasPrefix("/") else {
                    throw ConfigurationError(message: "--cache-dir: expected an absolute path or none, got '\(v)'")
                }
                o.cacheDirectory = .path(v)
            }
        },
    ]
}
