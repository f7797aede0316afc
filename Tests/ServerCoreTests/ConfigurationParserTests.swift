import Logging
import Testing
@testable import ServerCore

private func configuration(_ arguments: [String], _ environment: [String: String] = [:]) throws -> ServerConfiguration {
    guard case .run(let c) = try ConfigurationParser.parse(arguments: arguments, environment: environment) else {
        throw ConfigurationError(message: "not a run invocation")
    }
    return c
}

private func failure(_ arguments: [String], _ environment: [String: String] = [:]) -> String? {
    do {
        _ = try ConfigurationParser.parse(arguments: arguments, environment: environment)
        return nil
    } catch {
        return error.message
    }
}

@Suite struct ConfigurationParsing {
    @Test func defaultsWhenNothingIsSet() throws {
        let c = try configuration([])
        #expect(c.maxConcurrency >= 8)
        #expect(c.cacheBytes == 256 * 1024 * 1024)
        #expect(c.tagTTL == 60)
        #expect(c.platform == "linux/amd64")
        #expect(c.maxMessageBytes == 64 * 1024 * 1024)
        #expect(c.logLevel == .info)
        #expect(c.logFormat == .text)
        #expect(c.retries == 3)
        #expect(c.insecureRegistries.isEmpty)
    }

    @Test func everyOptionHasBothForms() throws {
        let cli = try configuration([
            "--max-concurrency", "3", "--cache-bytes=64MiB", "--tag-ttl", "2m", "--platform", "linux/arm64/v8",
            "--insecure-registry", "reg:5000", "--insecure-registry=other", "--timeout", "500ms",
            "--retries", "0", "--log-level", "debug", "--log-format", "json", "--max-message-bytes", "1K",
            "--mirror", "docker.io=mirror:5000",
        ])
        let env = try configuration([], [
            "OCIRPC_MAX_CONCURRENCY": "3", "OCIRPC_CACHE_BYTES": "64MiB", "OCIRPC_TAG_TTL": "120",
            "OCIRPC_PLATFORM": "linux/arm64/v8", "OCIRPC_INSECURE_REGISTRY": "reg:5000, other",
            "OCIRPC_TIMEOUT": "0.5s", "OCIRPC_RETRIES": "0", "OCIRPC_LOG_LEVEL": "DEBUG",
            "OCIRPC_LOG_FORMAT": "json", "OCIRPC_MAX_MESSAGE_BYTES": "1024", "OCIRPC_MIRROR": "docker.io=mirror:5000",
        ])
        #expect(cli == env)
        #expect(cli.maxConcurrency == 3)
        #expect(cli.cacheBytes == 64 << 20)
        #expect(cli.tagTTL == 120)
        #expect(cli.timeout == 0.5)
        #expect(cli.insecureRegistries == ["reg:5000", "other"])
        #expect(cli.maxMessageBytes == 1024)
        #expect(cli.logLevel == .debug)
        #expect(cli.mirrors == ["docker.io=mirror:5000"])
        #expect(ConfigurationParser.options.count == 16)
    }

    @Test func commandLineWinsOverEnvironment() throws {
        let c = try configuration(["--retries", "5", "--insecure-registry", "a"],
                                  ["OCIRPC_RETRIES": "1", "OCIRPC_INSECURE_REGISTRY": "b,c"])
        #expect(c.retries == 5)
        #expect(c.insecureRegistries == ["a"])
    }

    @Test func helpAndVersion() throws {
        #expect(try ConfigurationParser.parse(arguments: ["--help"], environment: [:]) == .help)
        #expect(try ConfigurationParser.parse(arguments: ["--retries", "1", "-h"], environment: [:]) == .help)
        #expect(try ConfigurationParser.parse(arguments: ["--version"], environment: [:]) == .version)
        for option in ConfigurationParser.options {
            #expect(ConfigurationParser.usage.contains(option.flag))
            #expect(ConfigurationParser.usage.contains(option.variable))
        }
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
            (["--ca-file", "/nonexistent/ca.pem"], [:], "--ca-file"),
            (["--timeout"], [:], "needs a value"),
            (["--colour"], [:], "unknown option"),
            // Every duration and size is bounded when parsed, not when used.
            (["--mirror", "docker.io=user:pw@mirror:5000"], [:], "without credentials"),
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
            ([], ["OCIRPC_RETRIES": "x"], "OCIRPC_RETRIES"),
        ]
        for (arguments, environment, fragment) in cases {
            let message = failure(arguments, environment)
            #expect(message?.contains(fragment) == true, "\(arguments) \(environment): \(message ?? "accepted")")
            #expect(message?.contains("\n") == false)
        }
    }

    @Test func sizesAndDurations() throws {
        #expect(try ConfigurationParser.byteSize("512", "x", allowZero: false, max: 1 << 40) == 512)
        #expect(try ConfigurationParser.byteSize("2k", "x", allowZero: false, max: 1 << 40) == 2048)
        #expect(try ConfigurationParser.byteSize("3GiB", "x", allowZero: false, max: 1 << 40) == 3 << 30)
        #expect(try ConfigurationParser.byteSize("0", "x", allowZero: true, max: 1) == 0)
        #expect(try ConfigurationParser.duration("250ms", "x", allowZero: false, max: 86_400) == 0.25)
        #expect(try ConfigurationParser.duration("1h", "x", allowZero: false, max: 86_400) == 3600)
        #expect(try ConfigurationParser.duration("0", "x", allowZero: true, max: 1) == 0)
    }
}
