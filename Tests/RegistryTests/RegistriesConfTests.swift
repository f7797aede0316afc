import Foundation
import Testing
import Options
@testable import Registry

@Suite struct RegistriesConfParsing {
    @Test func registriesWithMirrorsInFileOrder() throws {
        let conf = try RegistriesConf.parse(
            """
            # a podman-style file
            unqualified-search-registries = ["docker.io", "quay.io"]
            short-name-mode = "enforcing"

            [[registry]]
            prefix = "docker.io"
            location = "docker.io"   # trailing comment
            [[registry.mirror]]
            location = "mirror-a.internal:5000"
            insecure = true
            [[registry.mirror]]
            location = 'mirror-b.internal'

            [[registry]]
            location = "registry.local:5000"
            insecure = true
            blocked = false

            [aliases]
            "fedora" = "registry.fedoraproject.org/fedora"
            """)
        #expect(conf.mirrors == ["docker.io=mirror-a.internal:5000", "docker.io=mirror-b.internal"])
        #expect(conf.insecureRegistries == ["mirror-a.internal:5000", "registry.local:5000"])
    }

    @Test func aMultiLineArrayIsSkippedWhole() throws {
        let conf = try RegistriesConf.parse(
            """
            unqualified-search-registries = [
              "docker.io",
              "quay.io",
            ]
            [[registry]]
            location = "quay.io"
            [[registry.mirror]]
            location = "mirror.internal"
            """)
        #expect(conf.mirrors == ["quay.io=mirror.internal"])
    }

    @Test func aPrefixAloneNamesTheRegistry() throws {
        let conf = try RegistriesConf.parse(
            "[[registry]]\nprefix = \"ghcr.io\"\n[[registry.mirror]]\nlocation = \"m\"\n")
        #expect(conf.mirrors == ["ghcr.io=m"])
    }

    @Test func anEmptyFileHasNothing() throws {
        #expect(try RegistriesConf.parse("") == RegistriesConf())
        #expect(try RegistriesConf.parse("# only a comment\n\n") == RegistriesConf())
    }

    @Test(arguments: [
        ("[[registry.mirror]]\nlocation = \"m\"", "before any [[registry]]"),
        ("[[registry]]\nlocation = docker.io", "quoted string"),
        ("[[registry]]\nlocation = \"docker.io\"\ninsecure = yes", "true or false"),
        ("[[registry]]\nlocation = \"docker.io/library\"", "namespace"),
        ("[[registry]]\ninsecure = true", "without a location"),
        ("[[registry]]\nlocation \"x\"", "key = value"),
        ("[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"m.io/path\"", "host[:port]"),
        // Security keys are never skipped: unknown ones are refused.
        ("[[registry]]\nlocation = \"q.io\"\nverify-signatures = true", "not supported in [[registry]]"),
        (
            "[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"m\"\nblocked = true",
            "not supported in [[registry.mirror]]"
        ),
        (
            "[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"",
            "pull-from-mirror"
        ),
        ("[[registry]]\nlocation = \"q.io\"\nmirror = [{ location = \"m\" }]", "not supported here"),
        ("[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"user:pw@m\"", "credentials"),
    ])
    func malformedFilesAreOneLineReasons(text: String, fragment: String) {
        do {
            _ = try RegistriesConf.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test func blockedDigestOnlyAndPullFromMirrorAreHonoured() throws {
        let conf = try RegistriesConf.parse(
            """
            [[registry]]
            location = "bad.example"
            blocked = true

            [[registry]]
            location = "quay.io"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "m1"
            pull-from-mirror = "tag-only"

            [[registry]]
            location = "ghcr.io"
            [[registry.mirror]]
            location = "m2"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "m3"
            """)
        #expect(conf.blockedRegistries == ["bad.example"])
        #expect(
            conf.mirrorEntries == [
                .init(registry: "quay.io", mirror: RegistryMirror(host: "m1", pull: .digestOnly)),
                .init(registry: "ghcr.io", mirror: RegistryMirror(host: "m2", pull: .digestOnly)),
                .init(registry: "ghcr.io", mirror: RegistryMirror(host: "m3", pull: .all)),
            ])
    }

    @Test func theFlagReadsTheFileAndAMissingFileIsAnError() throws {
        let path = "/tmp/ocirpc-registries-\(UInt32.random(in: 0...UInt32.max)).conf"
        try "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"m:5000\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard
            case .run(let parsed) = try OptionParser.parse(
                arguments: ["--registries-conf", path], environment: [:], options: RegistryOptions.options)
        else {
            Issue.record("not a run")
            return
        }
        #expect(parsed[RegistryOptions.self].registriesConf.mirrors == ["docker.io=m:5000"])
        #expect(throws: ConfigurationError.self) {
            try OptionParser.parse(
                arguments: ["--registries-conf", "/nonexistent/registries.conf"], environment: [:],
                options: RegistryOptions.options)
        }
    }
}
