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
        #expect(
            conf.rules == [
                RegistryRule(
                    prefix: "docker.io",
                    mirrors: [
                        RegistryMirror(location: "mirror-a.internal:5000"),
                        RegistryMirror(location: "mirror-b.internal"),
                    ]),
                RegistryRule(prefix: "registry.local:5000"),
            ])
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
        #expect(conf.rules == [RegistryRule(prefix: "quay.io", mirrors: [RegistryMirror(location: "mirror.internal")])])
    }

    @Test func aPrefixAloneNamesTheRegistry() throws {
        let conf = try RegistriesConf.parse(
            "[[registry]]\nprefix = \"ghcr.io\"\n[[registry.mirror]]\nlocation = \"m\"\n")
        #expect(conf.rules == [RegistryRule(prefix: "ghcr.io", mirrors: [RegistryMirror(location: "m")])])
    }

    /// A table's prefix and location are both kept: a table with both
    /// took the location for the prefix, so its names were neither moved
    /// nor blocked (`blocked` applied to the location instead).
    @Test func prefixesLocationsNamespacesAndWildcardsAreReadAsWritten() throws {
        let conf = try RegistriesConf.parse(
            """
            [[registry]]
            prefix = "example.com/foo"
            location = "internal.example.net/bar"
            [[registry.mirror]]
            location = "mirror-0.local/mirror-for-foo"

            [[registry]]
            prefix = "evil.example"
            location = "copy.local"
            blocked = true

            [[registry]]
            prefix = "*.Untrusted.example"
            blocked = true

            [[registry]]
            location = "q.io/team"

            [[registry]]
            prefix = "*.moved.example"
            location = "copy.local/moved"
            [[registry.mirror]]
            location = "mirror.local"
            """)
        #expect(
            conf.rules == [
                RegistryRule(
                    prefix: "example.com/foo", location: "internal.example.net/bar",
                    mirrors: [RegistryMirror(location: "mirror-0.local/mirror-for-foo")]),
                RegistryRule(prefix: "evil.example", location: "copy.local", blocked: true),
                RegistryRule(prefix: "*.untrusted.example", blocked: true),
                RegistryRule(prefix: "q.io/team"),
                RegistryRule(
                    prefix: "*.moved.example", location: "copy.local/moved",
                    mirrors: [RegistryMirror(location: "mirror.local")]),
            ])
    }

    /// The drop-ins beside the file (`registries.conf.d/*.conf`, by name)
    /// are read after it, as podman reads them: a drop-in's table replaces
    /// the one with its prefix, and adds the others. A `blocked` in a
    /// drop-in was never read, so a registry podman refuses was served.
    @Test func dropInsBesideTheFileAreReadAfterItInNameOrder() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "ocirpc-dropins-\(UInt32.random(in: 0...UInt32.max))")
        let path = directory.appendingPathComponent("registries.conf").path
        try FileManager.default.createDirectory(atPath: path + ".d/sub.conf", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        [[registry]]
        location = "q.io"
        [[registry.mirror]]
        location = "old-mirror.local"
        insecure = true
        [[registry]]
        location = "kept.io"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        try "[[registry]]\nlocation = \"bad.example\"\nblocked = true\n"
            .write(toFile: path + ".d/10-block.conf", atomically: true, encoding: .utf8)
        try "[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"new-mirror.local\"\n"
            .write(toFile: path + ".d/20-q.conf", atomically: true, encoding: .utf8)
        try "[[registry]]\nlocation = \"bad.example\"\n".write(
            toFile: path + ".d/05-earlier.conf", atomically: true, encoding: .utf8)
        try "not = [valid".write(toFile: path + ".d/readme.txt", atomically: true, encoding: .utf8)

        let conf = try RegistriesConf.load(path)
        #expect(
            conf.rules == [
                RegistryRule(prefix: "q.io", mirrors: [RegistryMirror(location: "new-mirror.local")]),
                RegistryRule(prefix: "kept.io"),
                RegistryRule(prefix: "bad.example", blocked: true),
            ])
        // The replaced table's insecure mirror went with it.
        #expect(conf.insecureRegistries == [])

        // A drop-in that cannot be read fails the whole, naming itself.
        try "[[registry]]\nlocation = \"x.io\"\nverify = true\n"
            .write(toFile: path + ".d/30-unknown.conf", atomically: true, encoding: .utf8)
        do {
            _ = try RegistriesConf.load(path)
            Issue.record("a drop-in with an unknown key was read")
        } catch {
            #expect(error.message.hasPrefix(path + ".d/30-unknown.conf: "), "\(error.message)")
        }
    }

    @Test func anEmptyFileHasNothing() throws {
        #expect(try RegistriesConf.parse("") == RegistriesConf())
        #expect(try RegistriesConf.parse("# only a comment\n\n") == RegistriesConf())
    }

    @Test(arguments: [
        ("[[registry.mirror]]\nlocation = \"m\"", "before any [[registry]]"),
        ("[[registry]]\nlocation = docker.io", "quoted string"),
        ("[[registry]]\nlocation = \"docker.io\"\ninsecure = yes", "true or false"),
        ("[[registry]]\ninsecure = true", "without a prefix or a location"),
        ("[[registry]]\nlocation \"x\"", "key = value"),
        ("[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"m.io/Path\"", "lower case"),
        // Version 1's block list was skipped with the tables not read.
        ("[registries.block]\nregistries = ['bad.example']", "version 1"),
        ("[registries.insecure]\nregistries = [\n  'x.io',\n]", "version 1"),
        // What cannot be honoured as written is refused, never half applied.
        ("[[registry]]\nprefix = \"q.io/app:v1\"", "a tag or a digest"),
        ("[[registry]]\nprefix = \"q.io/app@sha256:abc\"", "a tag or a digest"),
        ("[[registry]]\nprefix = \"q.io//app\"", "host[:port][/namespace]"),
        ("[[registry]]\nprefix = \"q.io/ns\"\ninsecure = true", "insecure applies to whole registries"),
        ("[[registry]]\nprefix = \"*.q.io\"\ninsecure = true", "insecure applies to whole registries"),
        // containers/image refuses a wildcard with a port; the server read it and matched nothing.
        ("[[registry]]\nprefix = \"*.q.io:5000\"\nblocked = true", "without a port"),
        ("[[registry]]\nprefix = \"*.q.io\"\nlocation = \"*.m.io\"", "location '*.m.io' of *.q.io"),
        ("[[registry]]\nprefix = \"*.q.io/ns\"\nblocked = true", "expected host[:port]"),
        ("[[registry]]\nlocation = \"q.io\"\n[[registry]]\nprefix = \"Q.io\"\nblocked = true", "given twice"),
        // containers/image refuses both; the server made the mirror digest-only.
        (
            "[[registry]]\nlocation = \"q.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"tag-only\"",
            "cannot both be set"
        ),
        // A prefix moved to a registry another table blocks: containers/image refuses the file.
        (
            "[[registry]]\nprefix = \"a.io\"\nlocation = \"b.io\"\n[[registry]]\nlocation = \"B.io\"\nblocked = true",
            "registry 'B.io' is given twice with different 'blocked' settings"
        ),
        (
            "[[registry]]\nprefix = \"a.io\"\nlocation = \"b.io\"\ninsecure = true\n[[registry]]\nprefix = \"c.io\"\nlocation = \"b.io\"",
            "different 'insecure' settings"
        ),
        (
            "[[registry]]\nlocation = \"q.io\"\n[[registry.mirror]]\nlocation = \"m.io/ns\"\ninsecure = true",
            "insecure applies to whole registries"
        ),
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

            [[registry]]
            location = "ghcr.io"
            [[registry.mirror]]
            location = "m2"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "m3"
            """)
        #expect(
            conf.rules == [
                RegistryRule(prefix: "bad.example", blocked: true),
                RegistryRule(prefix: "quay.io", mirrors: [RegistryMirror(location: "m1", pull: .digestOnly)]),
                RegistryRule(
                    prefix: "ghcr.io",
                    mirrors: [RegistryMirror(location: "m2", pull: .digestOnly), RegistryMirror(location: "m3")]),
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
        #expect(
            parsed[RegistryOptions.self].registriesConf.rules == [
                RegistryRule(prefix: "docker.io", mirrors: [RegistryMirror(location: "m:5000")])
            ])
        #expect(throws: ConfigurationError.self) {
            try OptionParser.parse(
                arguments: ["--registries-conf", "/nonexistent/registries.conf"], environment: [:],
                options: RegistryOptions.options)
        }
    }
}
