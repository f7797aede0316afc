import Logging
import Options
import Registry
import Testing
@testable import OCIMethods
@testable import ServerCore

/// Every section of one parse, as the `ocirpc` command parses it.
private struct Configuration: Equatable {
    let server: ServerOptions
    let registry: RegistryOptions
    let methods: MethodOptions
}

private let modules = [OCIMethods.module]

private func parse(_ arguments: [String], _ environment: [String: String]) throws(ConfigurationError) -> Invocation {
    try ServerCommand.parse(arguments: arguments, environment: environment, modules: modules)
}

private func configuration(_ arguments: [String], _ environment: [String: String] = [:]) throws -> Configuration {
    guard case .run(let parsed) = try parse(arguments, environment) else {
        throw ConfigurationError(message: "not a run invocation")
    }
    return Configuration(
        server: parsed[ServerOptions.self], registry: parsed[RegistryOptions.self],
        methods: parsed[MethodOptions.self])
}

private func failure(_ arguments: [String], _ environment: [String: String] = [:]) -> String? {
    do {
        _ = try parse(arguments, environment)
        return nil
    } catch {
        return error.message
    }
}

private func isHelp(_ invocation: Invocation) -> Bool { if case .help = invocation { true } else { false } }
private func isVersion(_ invocation: Invocation) -> Bool { if case .version = invocation { true } else { false } }

@Suite struct ConfigurationParsing {
    @Test func defaultsWhenNothingIsSet() throws {
        let c = try configuration([])
        #expect(c.methods.maxConcurrency >= 8)
        #expect(c.methods.cacheBytes == 256 * 1024 * 1024)
        #expect(c.methods.tagTTL == 60)
        #expect(c.methods.platform == .linuxAMD64)
        #expect(c.server.maxMessageBytes == 64 * 1024 * 1024)
        #expect(c.server.logLevel == .info)
        #expect(c.server.logFormat == .text)
        #expect(c.registry.retries == 3)
        #expect(c.registry.insecureRegistries.isEmpty)
    }

    @Test func everyOptionHasBothForms() throws {
        let cli = try configuration([
            "--max-concurrency", "3", "--cache-bytes=64MiB", "--tag-ttl", "2m", "--platform", "linux/arm64/v8",
            "--insecure-registry", "reg:5000", "--insecure-registry=other", "--timeout", "500ms",
            "--retries", "0", "--log-level", "debug", "--log-format", "json", "--max-message-bytes", "1K",
            "--mirror", "docker.io=mirror:5000/hub", "--cache-dir", "/var/cache/x", "--max-memory-bytes", "1GiB",
            "--max-download-bytes", "512MiB", "--allow-local-redirects", "registry.example:5000",
        ])
        let env = try configuration(
            [],
            [
                "OCIRPC_MAX_CONCURRENCY": "3", "OCIRPC_CACHE_BYTES": "64MiB", "OCIRPC_TAG_TTL": "120",
                "OCIRPC_PLATFORM": "linux/arm64/v8", "OCIRPC_INSECURE_REGISTRY": "reg:5000, other",
                "OCIRPC_TIMEOUT": "0.5s", "OCIRPC_RETRIES": "0", "OCIRPC_LOG_LEVEL": "DEBUG",
                "OCIRPC_LOG_FORMAT": "json", "OCIRPC_MAX_MESSAGE_BYTES": "1024",
                "OCIRPC_MIRROR": "docker.io=mirror:5000/hub", "OCIRPC_CACHE_DIR": "/var/cache/x",
                "OCIRPC_MAX_MEMORY_BYTES": "1073741824", "OCIRPC_MAX_DOWNLOAD_BYTES": "512M",
                "OCIRPC_ALLOW_LOCAL_REDIRECTS": "registry.example:5000",
            ])
        #expect(cli == env)
        #expect(cli.methods.maxConcurrency == 3)
        #expect(cli.methods.cacheBytes == 64 << 20)
        #expect(cli.methods.tagTTL == 120)
        #expect(cli.methods.platform.description == "linux/arm64/v8")
        #expect(cli.registry.timeout == 0.5)
        #expect(cli.registry.insecureRegistries == ["reg:5000", "other"])
        #expect(cli.registry.localNetworkRegistries == ["registry.example:5000"])
        #expect(cli.server.maxMessageBytes == 1024)
        #expect(cli.server.maxMemoryBytes == 1 << 30)
        #expect(cli.registry.maxDownloadBytes == 512 << 20)
        #expect(cli.server.logLevel == .debug)
        #expect(
            cli.registry.mirrors == [.init(registry: "docker.io", mirror: RegistryMirror(location: "mirror:5000/hub"))])
        #expect(cli.methods.cacheDirectory == .path("/var/cache/x"))
        #expect(ServerCommand.options(modules).count == 21)
    }

    @Test func commandLineWinsOverEnvironment() throws {
        let c = try configuration(
            ["--retries", "5", "--insecure-registry", "a"],
            ["OCIRPC_RETRIES": "1", "OCIRPC_INSECURE_REGISTRY": "b,c"])
        #expect(c.registry.retries == 5)
        #expect(c.registry.insecureRegistries == ["a"])
    }

    @Test func helpAndVersion() throws {
        #expect(isHelp(try parse(["--help"], [:])))
        #expect(isHelp(try parse(["--retries", "1", "-h"], [:])))
        #expect(isVersion(try parse(["--version"], [:])))
        let usage = ServerCommand.usage(modules)
        for option in ServerCommand.options(modules) {
            #expect(usage.contains(option.flag))
            #expect(usage.contains(option.variable))
        }
        #expect(usage.contains("credHelpers"), "the module's notes follow the options")
        // Each flag is declared once, by one module.
        let flags = ServerCommand.options(modules).map(\.flag)
        #expect(Set(flags).count == flags.count)
    }

    @Test func badValuesAreOneLineReasons() {
        let cases: [([String], [String: String], String)] = [
            (["--max-concurrency", "0"], [:], "--max-concurrency"),
            (["--max-concurrency", "many"], [:], "--max-concurrency"),
            (["--cache-bytes", "lots"], [:], "--cache-bytes"),
            (["--cache-bytes", "12XB"], [:], "--cache-bytes"),
            (["--tag-ttl", "-1s"], [:], "--tag-ttl"),
            (["--timeout", "0"], [:], "--timeout"),
            (["--platform", "linux"], [:], "--platform"),
            (["--platform", "linux//v7"], [:], "--platform"),
            (["--log-level", "loud"], [:], "--log-level"),
            (["--log-format", "xml"], [:], "--log-format"),
            (["--retries", "-1"], [:], "--retries"),
            (["--max-message-bytes", "0"], [:], "--max-message-bytes"),
            (["--mirror", "nohost"], [:], "--mirror"),
            (["--insecure-registry", "http://x/"], [:], "--insecure-registry"),
            (["--secure-registry", "https://x/"], [:], "--secure-registry"),
            (["--allow-local-redirects", "https://x/"], [:], "--allow-local-redirects"),
            (["--ca-file", "/nonexistent/ca.pem"], [:], "--ca-file"),
            (["--timeout"], [:], "needs a value"),
            (["--colour"], [:], "unknown option"),
            // Every duration and size is bounded when parsed, not when used.
            (["--mirror", "docker.io=user:pw@mirror:5000"], [:], "without credentials"),
            (["--mirror", "docker.io=mirror:5000/Hub"], [:], "lower case"),
            (["--mirror", "docker.io=mirror:5000/hub:v1"], [:], "a tag or a digest"),
            (["--mirror", "docker.io/library=mirror:5000"], [:], "expected host[:port]"),
            (["--timeout", "6000000h"], [:], "longest allowed"),
            (["--timeout", "1e300"], [:], "--timeout"),
            (["--timeout", "0.0000001s"], [:], "shortest allowed"),
            (["--request-timeout", "25h"], [:], "longest allowed"),
            (["--tag-ttl", "9999999999999999999s"], [:], "longest allowed"),
            (["--cache-bytes", "9999999999GiB"], [:], "--cache-bytes"),
            (["--cache-bytes", "65GiB"], [:], "largest allowed"),
            (["--max-message-bytes", "2GiB"], [:], "largest allowed"),
            (["--max-decompressed-bytes", "0"], [:], "--max-decompressed-bytes"),
            (["--max-decompressed-bytes", "2048GiB"], [:], "largest allowed"),
            ([], ["OCIRPC_TIMEOUT": "6000000h"], "longest allowed"),
            (["serve"], [:], "unknown option"),
            (["--cache-dir", "relative/dir"], [:], "--cache-dir"),
            ([], ["OCIRPC_RETRIES": "x"], "OCIRPC_RETRIES"),
        ]
        for (arguments, environment, fragment) in cases {
            let message = failure(arguments, environment)
            #expect(message?.contains(fragment) == true, "\(arguments) \(environment): \(message ?? "accepted")")
            #expect(message?.contains("\n") == false)
        }
    }

    @Test func theDiskCacheLivesWhereUsersKeepCaches() throws {
        let standard = MethodOptions.CacheDirectory.standard
        #expect(standard.resolved(["XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"]) == "/x/cache/ocirpc")
        #expect(standard.resolved(["XDG_CACHE_HOME": "relative", "HOME": "/home/u"]) == "/home/u/.cache/ocirpc")
        #expect(standard.resolved([:]) == nil)
        #expect(try configuration(["--cache-dir", "none"]).methods.cacheDirectory == .none)
        #expect(
            try configuration([], ["OCIRPC_CACHE_DIR": "none"]).methods.cacheDirectory.resolved(["HOME": "/h"]) == nil)
    }

    @Test func sizesAndDurations() throws {
        #expect(try OptionValue.byteSize("512", "x", allowZero: false, max: 1 << 40) == 512)
        #expect(try OptionValue.byteSize("2k", "x", allowZero: false, max: 1 << 40) == 2048)
        #expect(try OptionValue.byteSize("3GiB", "x", allowZero: false, max: 1 << 40) == 3 << 30)
        #expect(try OptionValue.byteSize("0", "x", allowZero: true, max: 1) == 0)
        #expect(try OptionValue.duration("250ms", "x", allowZero: false, max: 86_400) == 0.25)
        #expect(try OptionValue.duration("1h", "x", allowZero: false, max: 86_400) == 3600)
        #expect(try OptionValue.duration("0", "x", allowZero: true, max: 1) == 0)
    }
}
