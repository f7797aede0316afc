import Foundation
import Locking
import Testing
import TestFixtures
@testable import Registry

@Suite struct AuthChallengeParsing {
    @Test func bearerChallengeWithQuotedParameters() {
        let c = AuthChallenge(
            #"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
        #expect(c?.scheme == .bearer)
        #expect(
            c?.parameters == [
                "realm": "https://auth.example/token", "service": "registry.example",
                "scope": "repository:a/b:pull,push",
            ])
    }

    @Test func basicChallengeAndCaseInsensitiveScheme() {
        #expect(AuthChallenge(#"basic realm="x""#)?.scheme == .basic)
        #expect(AuthChallenge(#"BEARER realm="r""#)?.parameters["realm"] == "r")
    }

    @Test func escapedQuotesAndUnquotedValues() {
        let c = AuthChallenge(#"Bearer realm="a\"b", service=plain"#)
        #expect(c?.parameters == ["realm": "a\"b", "service": "plain"])
    }

    @Test func unknownSchemesAreIgnored() {
        #expect(AuthChallenge("Negotiate abc") == nil)
        #expect(AuthChallenge("") == nil)
    }
}

@Suite struct CredentialFiles {
    /// A store over `files` in a new folder, which is also the helpers' `PATH`.
    private func store(
        _ files: [String: String], helperTimeout: Double = 20,
        failureLifetime: Double = 30, environment: [String: String] = [:]
    ) throws -> (CredentialStore, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("containers"), withIntermediateDirectories: true)
        for (name, text) in files {
            let file = dir.appendingPathComponent(name)
            if name.hasPrefix("docker-credential-") {
                try Executables.write(text, to: file.path)
            } else {
                try FileManager.default.createDirectory(
                    at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(text.utf8).write(to: file)
            }
        }
        return (
            CredentialStore(
                environment: [
                    "DOCKER_CONFIG": dir.path, "XDG_RUNTIME_DIR": dir.path,
                    "HOME": "/nonexistent", "PATH": dir.path,
                ].merging(environment.mapValues { $0.replacingOccurrences(of: "$DIR", with: dir.path) }) { $1 },
                helperTimeout: helperTimeout, helperFailureLifetime: failureLifetime), dir
        )
    }

    /// A helper script that logs each call (and the server URL it was given)
    /// to `calls` in its folder, then runs `body`.
    private func helper(_ body: String) -> String {
        "#!/bin/sh\nread url\necho \"$url\" >> \"$(dirname \"$0\")/calls\"\n\(body)\n"
    }

    private func calls(_ dir: URL) -> [String] {
        ((try? String(contentsOf: dir.appendingPathComponent("calls"), encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    @Test func aCredentialHelperIsAskedOnceAndItsAnswerReused() async throws {
        let (s, dir) = try store([
            "config.json": #"{"credHelpers":{"r.example":"fake"}}"#,
            "docker-credential-fake": helper(
                #"echo '{"ServerURL":"r.example","Username":"helper-user","Secret":"helper-secret"}'"#),
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        for _ in 0..<3 {
            #expect(
                await s.credentials(for: "r.example") == Credentials(username: "helper-user", secret: "helper-secret"))
        }
        #expect(calls(dir) == ["r.example"])
    }

    @Test func aCredsStoreAnswersForRegistriesWithoutAnEntry() async throws {
        let (s, dir) = try store([
            "config.json": #"{"auths":{},"credsStore":"fake"}"#,
            "docker-credential-fake": helper(#"echo '{"Username":"<token>","Secret":"refresh"}'"#),
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "quay.io") == Credentials(username: "", secret: "", identityToken: "refresh"))
        #expect(calls(dir) == ["quay.io"])
    }

    @Test func aFailingHelperMeansAnonymousAndIsAskedAgainOnlyAfterAWhile() async throws {
        let files = [
            "config.json": #"{"credHelpers":{"r.example":"fake"}}"#,
            "docker-credential-fake": helper("echo 'credentials not found' ; exit 1"),
        ]
        let (s, dir) = try store(files)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example") == nil)
        #expect(await s.credentials(for: "r.example") == nil)
        #expect(calls(dir).count == 1)
        let (expiring, expiringDir) = try store(files, failureLifetime: 0)
        defer { try? FileManager.default.removeItem(at: expiringDir) }
        #expect(await expiring.credentials(for: "r.example") == nil)
        #expect(await expiring.credentials(for: "r.example") == nil)
        #expect(calls(expiringDir).count == 2)
    }

    @Test func aHelperThatClosesItsOutputAndLingersIsKilledAtTheTimeout() async throws {
        let (s, dir) = try store(
            [
                "config.json": #"{"credHelpers":{"r.example":"fake"}}"#,
                "docker-credential-fake": helper("exec >&-\nexec sleep 600"),
            ], helperTimeout: 0.3)
        defer { try? FileManager.default.removeItem(at: dir) }
        let started = ContinuousClock.now
        #expect(await s.credentials(for: "r.example") == nil)
        // Far below the helper's 600 s: it was killed, not waited for. The
        // bound leaves room for a shared task pool other tests keep busy
        // (10 s was passed once in a full run on a loaded machine).
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test func dockerHubIsAskedOfTheStoreUnderItsV1URL() async throws {
        let (s, dir) = try store([
            "config.json": #"{"credsStore":"fake"}"#,
            "docker-credential-fake": helper(#"echo '{"Username":"hub","Secret":"pw"}'"#),
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: ImageReference.dockerHub) == Credentials(username: "hub", secret: "pw"))
        #expect(calls(dir) == ["https://index.docker.io/v1/"])
    }

    @Test func aHelperThatNeverAnswersIsKilledAtTheTimeout() async throws {
        let (s, dir) = try store(
            [
                "config.json": #"{"credHelpers":{"r.example":"fake"}}"#,
                "docker-credential-fake": helper("exec sleep 600"),
            ], helperTimeout: 0.3)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example") == nil)
        #expect(calls(dir) == ["r.example"])
    }

    @Test func helperNamesThatAreNotPlainWordsAreNeverRun() async throws {
        let (s, dir) = try store([
            "config.json": #"{"credHelpers":{"r.example":"../fake"}}"#,
            "docker-credential-fake": helper(#"echo '{"Username":"u","Secret":"s"}'"#),
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example") == nil)
        #expect(calls(dir).isEmpty)
    }

    @Test func authFieldIsDecoded() async throws {
        let auth = Data("bob:pa:ss".utf8).base64EncodedString()
        let (s, dir) = try store(["config.json": #"{"auths":{"registry.example:5000":{"auth":"\#(auth)"}}}"#])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "registry.example:5000") == Credentials(username: "bob", secret: "pa:ss"))
        #expect(await s.credentials(for: "other.example") == nil)
    }

    @Test func urlSpellingsAndDockerHubAliasesMatch() async throws {
        let auth = Data("u:p".utf8).base64EncodedString()
        let (s, dir) = try store([
            "config.json":
                #"{"auths":{"https://index.docker.io/v1/":{"auth":"\#(auth)"},"https://quay.io":{"auth":"\#(auth)"}}}"#
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "index.docker.io")?.username == "u")
        #expect(await s.credentials(for: "quay.io")?.username == "u")
    }

    @Test func aRegistryTokenIsKept() async throws {
        let (s, dir) = try store(["config.json": #"{"auths":{"r.example":{"registrytoken":"bearer-me"}}}"#])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example")?.registryToken == "bearer-me")
        #expect(await s.credentials(for: "r.example")?.username == "")
    }

    @Test func identityTokenIsKept() async throws {
        let (s, dir) = try store(["config.json": #"{"auths":{"r.example":{"auth":"","identitytoken":"refresh-me"}}}"#])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example")?.identityToken == "refresh-me")
    }

    @Test func podmanAuthFileComesBeforeDockerConfig() async throws {
        let docker = Data("docker:1".utf8).base64EncodedString()
        let podman = Data("podman:2".utf8).base64EncodedString()
        let (s, dir) = try store([
            "config.json": #"{"auths":{"r.example":{"auth":"\#(docker)"}}}"#,
            "containers/auth.json": #"{"auths":{"r.example":{"auth":"\#(podman)"}}}"#,
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example")?.username == "podman")
    }

    private static func auth(_ user: String) -> String {
        let encoded = Data("\(user):pw".utf8).base64EncodedString()
        return #"{"auth":"\#(encoded)"}"#
    }

    /// containers-auth.json(5): a namespace's entry serves the repositories
    /// under it, the most specific first, and no other repository.
    @Test(arguments: [
        ("org/app", "app"), ("org/app/sub", "app"), ("org/other", "org"), ("org", "org"), ("org2/app", "registry"),
        ("orgapp", "registry"), ("other/org/app", "registry"), ("", "registry"),
    ])
    func aNamespacesEntryServesTheRepositoriesUnderIt(repository: String, user: String) async throws {
        let (s, dir) = try store([
            "containers/auth.json":
                #"{"auths":{"r.example":\#(Self.auth("registry")),"r.example/org":\#(Self.auth("org")),"r.example/org/app":\#(Self.auth("app"))}}"#
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example", repository: repository)?.username == user)
    }

    @Test func aNamespaceOfDockerHubIsSpeltAsPodmanWritesIt() async throws {
        let (s, dir) = try store([
            "containers/auth.json":
                #"{"auths":{"docker.io/library":\#(Self.auth("library")),"index.docker.io/team":\#(Self.auth("team"))}}"#
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: ImageReference.dockerHub, repository: "library/alpine")?.username == "library")
        #expect(await s.credentials(for: ImageReference.dockerHub, repository: "team/app")?.username == "team")
        #expect(await s.credentials(for: ImageReference.dockerHub, repository: "other/app") == nil)
    }

    @Test func aRegistrysHelperComesBeforeItsNamespacesEntries() async throws {
        let (s, dir) = try store([
            "containers/auth.json":
                #"{"auths":{"r.example/org":\#(Self.auth("org"))},"credHelpers":{"r.example":"fake"}}"#,
            "docker-credential-fake": helper(#"echo '{"Username":"helper","Secret":"pw"}'"#),
        ])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example", repository: "org/app")?.username == "helper")
    }

    @Test func theUsersOwnPodmanAuthFileIsReadAfterTheRuntimeOneAndBeforeDockers() async throws {
        let files = [
            "config.json": #"{"auths":{"r.example":\#(Self.auth("docker")),"d.example":\#(Self.auth("docker"))}}"#,
            "containers/auth.json": #"{"auths":{"r.example":\#(Self.auth("runtime"))}}"#,
            "config/containers/auth.json":
                #"{"auths":{"r.example":\#(Self.auth("config")),"c.example":\#(Self.auth("config"))}}"#,
        ]
        for environment in [["XDG_CONFIG_HOME": "$DIR/config"], ["HOME": "$DIR/home"]] {
            var files = files
            if environment["HOME"] != nil {
                files["home/.config/containers/auth.json"] = files.removeValue(forKey: "config/containers/auth.json")
            }
            let (s, dir) = try store(files, environment: environment)
            defer { try? FileManager.default.removeItem(at: dir) }
            #expect(await s.credentials(for: "r.example")?.username == "runtime")
            #expect(await s.credentials(for: "c.example")?.username == "config", "\(environment)")
            #expect(await s.credentials(for: "d.example")?.username == "docker")
        }
    }

    /// As podman and skopeo read the file their `--authfile` names: alone.
    /// It used to be read first, and the other files after it.
    @Test func aFileNamedByRegistryAuthFileIsReadAlone() async throws {
        let (s, dir) = try store(
            [
                "only.json": #"{"auths":{"r.example":\#(Self.auth("only"))}}"#,
                "config.json": #"{"auths":{"r.example":\#(Self.auth("docker")),"d.example":\#(Self.auth("docker"))}}"#,
                "containers/auth.json": #"{"auths":{"c.example":\#(Self.auth("runtime"))}}"#,
            ], environment: ["REGISTRY_AUTH_FILE": "$DIR/only.json"])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example")?.username == "only")
        #expect(await s.credentials(for: "d.example") == nil)
        #expect(await s.credentials(for: "c.example") == nil)
    }

    /// Without `$XDG_RUNTIME_DIR`, podman's own file is under
    /// `/run/containers/<uid>`; Docker's legacy `~/.dockercfg` comes last.
    @Test func theFilesAreReadInPodmansOrder() {
        let files = CredentialStore.authFiles(environment: ["HOME": "/h"], uid: 1000)
        #expect(
            files.map(\.path) == [
                "/run/containers/1000/auth.json", "/h/.config/containers/auth.json", "/h/.docker/config.json",
                "/h/.dockercfg",
            ])
        #expect(files.map(\.legacy) == [false, false, false, true])
        #expect(
            CredentialStore.authFiles(environment: ["REGISTRY_AUTH_FILE": "/a.json", "HOME": "/h"], uid: 0).map(\.path)
                == ["/a.json"])
        #expect(CredentialStore.authFiles(environment: [:], uid: 0).map(\.path) == ["/run/containers/0/auth.json"])
    }

    /// `~/.dockercfg` holds the entries alone, often under a URL; a newer
    /// file's entry for the same registry wins over it.
    @Test func theLegacyDockercfgIsReadLast() async throws {
        let (s, dir) = try store(
            [
                "home/.dockercfg":
                    #"{"https://index.docker.io/v1/":\#(Self.auth("legacy")),"r.example":\#(Self.auth("legacy"))}"#,
                "config.json": #"{"auths":{"r.example":\#(Self.auth("docker"))}}"#,
            ], environment: ["HOME": "$DIR/home"])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: ImageReference.dockerHub)?.username == "legacy")
        #expect(await s.credentials(for: "r.example")?.username == "docker")
    }

    @Test func missingOrBrokenFilesMeanAnonymous() async throws {
        let (s, dir) = try store(["config.json": "{not json"])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example") == nil)
    }

    @Test func missingHelperMeansAnonymous() async throws {
        let (s, dir) = try store(["config.json": #"{"credHelpers":{"r.example":"ocirpc-test-no-such-helper"}}"#])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(await s.credentials(for: "r.example") == nil)
    }
}

@Suite struct RetryPolicy {
    private let transport = HTTPTransport(
        settings: HTTPTransport.Settings(), logger: .disabled, counters: RegistryCounters())

    @Test func retryableStatuses() {
        #expect([429, 502, 503, 504].allSatisfy(HTTPTransport.isRetryable))
        #expect(![200, 401, 403, 404, 500, 501].contains(where: HTTPTransport.isRetryable))
    }

    @Test func retryAfterIsHonouredAndCapped() {
        #expect(transport.backoff(attempt: 1, retryAfter: "2") == 2)
        #expect(transport.backoff(attempt: 1, retryAfter: "3600") == 10)
    }

    @Test func backoffGrowsExponentiallyWithJitter() {
        for attempt in 1...6 {
            let ceiling = min(10, 0.2 * pow(2, Double(attempt - 1)))
            let delay = transport.backoff(attempt: attempt, retryAfter: nil)
            #expect(delay >= ceiling / 2 && delay <= ceiling, "attempt \(attempt): \(delay)")
        }
    }
}

/// A client without credentials, the loopback registry `tokenServer` also
/// plays (plain HTTP, so its plain-HTTP realm is its own), and that
/// registry's 401 naming `tokenServer` as its token realm.
private func challenged(by tokenServer: TestHTTPServer) -> (RegistryClient, String, HTTPResponse) {
    let registry = "127.0.0.1:\(tokenServer.port)"
    var configuration = RegistryClient.Configuration()
    configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": "/nonexistent"])
    configuration.transport.retries = 0
    let challenge = HTTPResponse(
        status: 401, headers: ["www-authenticate": #"Bearer realm="\#(tokenServer.baseURL)/token""#],
        body: [], challengeURL: "http://\(registry)/v2/app/manifests/v1")
    return (RegistryClient(configuration: configuration, logger: .disabled), registry, challenge)
}

/// Which token answers a 401: the one the request carried is refreshed, one
/// cached by another request meanwhile is reused.
@Suite struct TokenAfterAChallenge {
    @Test func aRequestSentBeforeATokenWasCachedRetriesWithItAndOnlyTheCarriedOneIsRefreshed() async throws {
        let issued = Locked(0)
        let tokenServer = try TestHTTPServer { _ in
            let number = issued.withLock { count -> Int in
                count += 1
                return count
            }
            return .response(status: 200, headers: [], body: Array(#"{"token":"t\#(number)","expires_in":300}"#.utf8))
        }
        defer { tokenServer.stop() }
        let (client, registry, challenge) = challenged(by: tokenServer)
        let scope = "repository:app:pull"

        let first = try await client.authenticator.authorizationAfterChallenge(
            challenge, registry: registry, repository: "app", scope: scope, sent: nil)
        #expect(first == "Bearer t1")
        // Sent without a token (before the first was cached): the cached one, no new request.
        let again = try await client.authenticator.authorizationAfterChallenge(
            challenge, registry: registry, repository: "app", scope: scope, sent: nil)
        #expect(again == "Bearer t1")
        #expect(issued.withLock { $0 } == 1)
        // Refused with the cached token: a new one.
        let refreshed = try await client.authenticator.authorizationAfterChallenge(
            challenge, registry: registry, repository: "app", scope: scope, sent: "Bearer t1")
        #expect(refreshed == "Bearer t2")
        #expect(issued.withLock { $0 } == 2)
        #expect(
            try await client.authenticator.authorization(registry: registry, repository: "app", scope: scope)
                == "Bearer t2")
    }
}

/// A challenge no token can be had for is not kept: a registry that sent
/// one while misconfigured for a moment is asked again, not refused for
/// the life of the server.
@Suite struct ChallengesThatFail {
    @Test func aChallengeNoTokenCanBeHadForIsForgottenAndTheRegistryAskedAgain() async throws {
        let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.utf8)
        let requests = Locked<[String?]>([])
        let registry = try TestHTTPServer { request in
            let number = requests.withLock { seen -> Int in
                seen.append(request.headers["authorization"])
                return seen.count
            }
            // The first answer's challenge names no realm; the registry
            // then serves without credentials.
            guard number > 1 else {
                return .response(status: 401, headers: [("WWW-Authenticate", "Bearer")], body: [])
            }
            return .response(
                status: 200, headers: [("Content-Type", "application/vnd.oci.image.manifest.v1+json")], body: manifest)
        }
        defer { registry.stop() }
        var configuration = RegistryClient.Configuration()
        configuration.credentials = CredentialStore(environment: ["DOCKER_CONFIG": "/nonexistent"])
        configuration.transport.retries = 0
        let client = RegistryClient(configuration: configuration, logger: .disabled)
        let host = "127.0.0.1:\(registry.port)"
        let refused = await #expect(throws: RegistryError.self) {
            _ = try await client.fetchManifest(try ImageReference.parse("\(host)/app:v1"))
        }
        #expect(refused?.reason == .unauthorized)
        let fetched = try await client.fetchManifest(try ImageReference.parse("\(host)/app:v2"))
        #expect(fetched.bytes == manifest)
        #expect(requests.withLock { $0 } == [nil, nil])
    }
}

/// What a token server answers is read on a tape and bounded: the token,
/// escapes decoded, or `access_token`; an answer over 1 MiB is refused
/// before it is read, never taken for a token.
@Suite struct TokenAnswers {
    /// The authorization a token server answering `body` gives, or the error.
    private func authorization(answering body: [UInt8]) async throws -> Result<String?, RegistryError> {
        let tokenServer = try TestHTTPServer { _ in .response(status: 200, headers: [], body: body) }
        defer { tokenServer.stop() }
        let (client, registry, challenge) = challenged(by: tokenServer)
        do throws(RegistryError) {
            return .success(
                try await client.authenticator.authorizationAfterChallenge(
                    challenge, registry: registry, repository: "app", scope: "repository:app:pull", sent: nil))
        } catch {
            return .failure(error)
        }
    }

    @Test func theTokenIsReadWithItsEscapesDecoded() async throws {
        #expect(
            try await authorization(answering: Array(#"{"token":"a\/b\u0063","expires_in":300}"#.utf8)).get()
                == "Bearer a/bc")
        #expect(try await authorization(answering: Array(#"{"access_token":"x"}"#.utf8)).get() == "Bearer x")
        let empty = try await authorization(answering: Array(#"{"token":"","expires_in":[0]}"#.utf8))
        #expect(throws: RegistryError.self) { try empty.get() }
    }

    /// A token server's `expires_in` is any number it likes: none may trap
    /// (Int.min less the early renewal overflowed) or keep a token past a
    /// day; a number that is not an Int is the spec's default of 60 s.
    @Test(arguments: [
        ("-9223372036854775808", 1), ("9223372036854775807", 86_400), ("-1", 1), ("0", 1), ("6", 1), ("7", 2),
        ("1e300", 55), ("99999999999999999999", 55), ("3600", 3595),
    ])
    func anyLifetimeIsReadWithoutTrapping(expiresIn: String, seconds: Int) async throws {
        let answer = try await authorization(answering: Array(#"{"token":"t","expires_in":\#(expiresIn)}"#.utf8))
        #expect(try answer.get() == "Bearer t")
        #expect(Authenticator.tokenLifetime(expiresIn: Int(expiresIn)) == seconds)
    }

    @Test func anAnswerOverOneMiBIsRefusedNotRead() async throws {
        let padding = String(repeating: " ", count: Authenticator.maxTokenBodyBytes)
        let refused = try await authorization(answering: Array((#"{"token":"t"}"# + padding).utf8))
        guard case .failure(let error) = refused else {
            Issue.record("a token was taken from an answer over the limit: \(refused)")
            return
        }
        #expect(error.message.contains("over 1 MiB"), "\(error.message)")
        // At the limit, it is read.
        let atLimit = String(repeating: " ", count: Authenticator.maxTokenBodyBytes - 13)
        #expect(try await authorization(answering: Array((#"{"token":"t"}"# + atLimit).utf8)).get() == "Bearer t")
    }
}
