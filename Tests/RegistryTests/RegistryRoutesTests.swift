import Testing
@testable import Registry

/// Where a reference is pulled from under registries.conf rules: the
/// longest prefix at a `/`, its mirrors then its location, each with the
/// rest of the name.
@Suite struct RegistryRoutesTests {
    private func route(_ rules: [RegistryRule], _ text: String) throws -> [String] {
        let route = try RegistryRoutes(rules: rules).route(try ImageReference.parse(text))
        return (route.mirrors + [route.primary]).map(\.description)
    }

    @Test func withoutRulesAReferenceIsPulledFromWhereItNames() throws {
        #expect(try route([], "q.io/app:v1") == ["q.io/app:v1"])
        #expect(try route([RegistryRule(prefix: "other.io")], "q.io/app:v1") == ["q.io/app:v1"])
    }

    @Test func aNamespaceIsMovedWithTheRestOfTheName() throws {
        let rule = RegistryRule(
            prefix: "example.com/foo", location: "internal.example.net/bar",
            mirrors: [RegistryMirror(location: "mirror-0.local/mirror-for-foo"), RegistryMirror(location: "m1.local")])
        // The example of containers-registries.conf(5).
        #expect(
            try route([rule], "example.com/foo/image:latest") == [
                "mirror-0.local/mirror-for-foo/image:latest", "m1.local/image:latest",
                "internal.example.net/bar/image:latest",
            ])
        // At a `/` only: `foobar` is not under `foo`.
        #expect(try route([rule], "example.com/foobar/image:latest") == ["example.com/foobar/image:latest"])
        let digest = "sha256:" + String(repeating: "a", count: 64)
        #expect(try route([rule], "example.com/foo/a/b@\(digest)").last == "internal.example.net/bar/a/b@\(digest)")
    }

    @Test func theLongestPrefixWins() throws {
        let rules = [
            RegistryRule(prefix: "q.io", location: "whole.local"),
            RegistryRule(prefix: "q.io/team/app", location: "app.local/copy"),
            RegistryRule(prefix: "q.io/team", location: "team.local"),
        ]
        #expect(try route(rules, "q.io/team/app:v1") == ["app.local/copy:v1"])
        #expect(try route(rules, "q.io/team/app/sub:v1") == ["app.local/copy/sub:v1"])
        #expect(try route(rules, "q.io/team/other:v1") == ["team.local/other:v1"])
        #expect(try route(rules, "q.io/lib:v1") == ["whole.local/lib:v1"])
    }

    @Test func mirrorsServeWhatTheirPullSettingLets() throws {
        let rule = RegistryRule(
            prefix: "q.io",
            mirrors: [
                RegistryMirror(location: "digests.local", pull: .digestOnly),
                RegistryMirror(location: "tags.local", pull: .tagOnly),
            ])
        let digest = "sha256:" + String(repeating: "b", count: 64)
        #expect(try route([rule], "q.io/app:v1") == ["tags.local/app:v1", "q.io/app:v1"])
        #expect(try route([rule], "q.io/app@\(digest)") == ["digests.local/app@\(digest)", "q.io/app@\(digest)"])
    }

    @Test func dockerHubIsMatchedByEitherName() throws {
        let rule = RegistryRule(prefix: "docker.io/library", location: "hub.local/library")
        #expect(try route([rule], "alpine:3") == ["hub.local/library/alpine:3"])
        #expect(try route([rule], "index.docker.io/library/alpine:3") == ["hub.local/library/alpine:3"])
        // `docker.io/alpine` is the alpine namespace, not the library image.
        #expect(
            try route([RegistryRule(prefix: "docker.io/alpine", location: "x.local")], "alpine:3").last
                == "index.docker.io/library/alpine:3")
    }

    /// A rule's `blocked` is for its prefix (before, a table with both a
    /// prefix and a location blocked the location), and for a namespace or
    /// a wildcard as written: never a registry more, nor one less.
    @Test func blockedIsForThePrefixAsWritten() throws {
        let rules = [
            RegistryRule(prefix: "evil.example", location: "copy.local", blocked: true),
            RegistryRule(prefix: "q.io/bad", blocked: true),
            RegistryRule(prefix: "*.untrusted.example", blocked: true),
        ]
        let routes = RegistryRoutes(rules: rules)
        for text in [
            "evil.example/app:v1", "q.io/bad:v1", "q.io/bad/x:v1", "a.untrusted.example/app:v1",
            "a.b.untrusted.example:5000/app:v1", "A.Untrusted.Example/app:v1",
        ] {
            #expect(throws: RegistryError.self, "\(text)") { try routes.route(try ImageReference.parse(text)) }
            #expect(throws: RegistryError.self, "\(text)") {
                try routes.refuseIfUnroutable(try ImageReference.parse(text))
            }
        }
        for text in ["copy.local/app:v1", "q.io/badx:v1", "q.io/good/bad:v1", "untrusted.example/app:v1"] {
            #expect(try routes.route(try ImageReference.parse(text)).primary.description == text)
            try routes.refuseIfUnroutable(try ImageReference.parse(text))
        }
    }

    @Test func aNameALongerPrefixMatchesTakesThatRuleOverAWildcard() throws {
        let rules = [
            RegistryRule(prefix: "*.example.com", blocked: true),
            RegistryRule(prefix: "ok.example.com/app", location: "ok.example.com/app"),
        ]
        #expect(try route(rules, "ok.example.com/app:v1") == ["ok.example.com/app:v1"])
        #expect(throws: RegistryError.self) { try route(rules, "ok.example.com/other:v1") }
        // A host's prefix longer than the wildcard's wins.
        #expect(
            try route(rules + [RegistryRule(prefix: "good.example.com")], "good.example.com/x:v1") == [
                "good.example.com/x:v1"
            ])
    }

    /// containers/image takes the longest prefix as written, and of two as
    /// long the first in byte order. The server compared a wildcard by the
    /// host it matched, so of two wildcards the later in the file won: a
    /// `blocked` on the narrower one was lost behind a broader one.
    @Test func ofTwoMatchingPrefixesTheLongerWinsWhateverTheirOrder() throws {
        let narrow = RegistryRule(prefix: "*.b.example.com", blocked: true)
        let broad = RegistryRule(prefix: "*.example.com")
        for rules in [[narrow, broad], [broad, narrow]] {
            #expect(throws: RegistryError.self) { try route(rules, "a.b.example.com/app:v1") }
            #expect(try route(rules, "a.c.example.com/app:v1") == ["a.c.example.com/app:v1"])
        }
        // As long: `*` sorts first, as containers/image sorts its tables.
        let wildcard = RegistryRule(prefix: "*.example.com", blocked: true)
        let host = RegistryRule(prefix: "a.example.com", mirrors: [RegistryMirror(location: "m.local")])
        for rules in [[wildcard, host], [host, wildcard]] {
            #expect(throws: RegistryError.self) { try route(rules, "a.example.com/app:v1") }
        }
    }

    /// containers/image matches a bare host's prefix to that host on any
    /// port, so a `blocked` host is refused on every port. A rule that
    /// would move such a name would move it to another host with the same
    /// port, which is refused; one that moves nothing pulls it as named.
    @Test func aHostsPrefixMatchesItOnAnyPort() throws {
        #expect(throws: RegistryError.self) {
            try route([RegistryRule(prefix: "evil.example", blocked: true)], "evil.example:5000/app:v1")
        }
        #expect(
            try route([RegistryRule(prefix: "q.io", location: "q.io")], "q.io:5000/app:v1") == ["q.io:5000/app:v1"])
        #expect(try route([RegistryRule(prefix: "q.io")], "q.io5/app:v1") == ["q.io5/app:v1"])
        for rule in [
            RegistryRule(prefix: "q.io", location: "copy.local"),
            RegistryRule(prefix: "q.io", mirrors: [RegistryMirror(location: "m.local")]),
        ] {
            do {
                _ = try route([rule], "q.io:5000/app:v1")
                Issue.record("moved to another host with its port")
            } catch let error as RegistryError {
                #expect(error.reason == .invalidReference)
            }
        }
        // A host with its port has a rule of its own.
        #expect(
            try route([RegistryRule(prefix: "q.io:5000", location: "copy.local")], "q.io:5000/app:v1") == [
                "copy.local/app:v1"
            ])
    }

    /// containers/image lets a wildcard move its names and have mirrors:
    /// each place is given the rest of the name after the host. The server
    /// refused such files.
    @Test func aWildcardMovesTheNameAfterItsHost() throws {
        let moved = RegistryRule(
            prefix: "*.example.com", location: "copy.local/ns", mirrors: [RegistryMirror(location: "m.local")])
        #expect(try route([moved], "a.example.com/foo/bar:v1") == ["m.local/foo/bar:v1", "copy.local/ns/foo/bar:v1"])
        let mirrored = RegistryRule(prefix: "*.example.com", mirrors: [RegistryMirror(location: "m.local/hub")])
        #expect(try route([mirrored], "a.b.example.com/x:v1") == ["m.local/hub/x:v1", "a.b.example.com/x:v1"])
        #expect(try route([mirrored], "example.com/x:v1") == ["example.com/x:v1"])
        // Docker Hub is `docker.io` to containers/image.
        #expect(
            try route([RegistryRule(prefix: "*.io", mirrors: [RegistryMirror(location: "m.local")])], "alpine:3")
                == ["m.local/library/alpine:3", "index.docker.io/library/alpine:3"])
        do {
            _ = try route([moved], "a.example.com:5000/foo:v1")
            Issue.record("moved to another host with its port")
        } catch let error as RegistryError {
            #expect(error.reason == .invalidReference)
        }
    }

    @Test func aRepositoryMovedToABareHostIsRefused() throws {
        let rule = RegistryRule(prefix: "q.io/app", location: "bare.local")
        #expect(try route([rule], "q.io/app/sub:v1") == ["bare.local/sub:v1"])
        do {
            _ = try route([rule], "q.io/app:v1")
            Issue.record("moved to no repository")
        } catch let error as RegistryError {
            #expect(error.reason == .invalidReference)
        }
    }

    @Test func theFlagsMirrorsComeFirstAmongTheirRegistrysOwn() throws {
        var conf = RegistriesConf()
        conf.rules = [RegistryRule(prefix: "docker.io", mirrors: [RegistryMirror(location: "file.local")])]
        let rules = RegistryClient.Configuration.rules(
            mirrors: [
                .init(registry: "index.docker.io", mirror: RegistryMirror(location: "flag-a.local")),
                .init(registry: "q.io", mirror: RegistryMirror(location: "flag-q.local")),
                .init(registry: "docker.io", mirror: RegistryMirror(location: "flag-b.local")),
            ], conf: conf)
        #expect(
            try route(rules, "alpine:3") == [
                "flag-a.local/library/alpine:3", "flag-b.local/library/alpine:3", "file.local/library/alpine:3",
                "index.docker.io/library/alpine:3",
            ])
        #expect(try route(rules, "q.io/app:v1") == ["flag-q.local/app:v1", "q.io/app:v1"])
    }
}
