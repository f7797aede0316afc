import Testing
@testable import Registry

private let hex64 = String(repeating: "a", count: 64)

@Suite struct ImageReferenceParsing {
    @Test(arguments: [
        ("alpine", "index.docker.io", "library/alpine", "latest"),
        ("alpine:3.19", "index.docker.io", "library/alpine", "3.19"),
        ("docker.io/alpine", "index.docker.io", "library/alpine", "latest"),
        ("docker.io/library/alpine:edge", "index.docker.io", "library/alpine", "edge"),
        ("user/app:v1", "index.docker.io", "user/app", "v1"),
        ("quay.io/org/app:v1.2_3-rc", "quay.io", "org/app", "v1.2_3-rc"),
        ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest"),
        ("localhost/app", "localhost", "app", "latest"),
        ("127.0.0.1:5000/app:t", "127.0.0.1:5000", "app", "t"),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest"),
        ("registry.example/a__b/c-d/e.f", "registry.example", "a__b/c-d/e.f", "latest"),
        ("registry.example/a---b", "registry.example", "a---b", "latest"),
    ])
    func defaultsAndComponents(text: String, registry: String, repository: String, tag: String) throws {
        let ref = try ImageReference.parse(text)
        #expect(ref.registry == registry)
        #expect(ref.repository == repository)
        #expect(ref.tag == tag)
        #expect(ref.digest == nil)
        #expect(ref.identifier == tag)
    }

    /// A reference kept as written (already canonical) is the one built
    /// from its parts, field by field; one normalised is rebuilt.
    @Test(arguments: [
        "quay.io/org/app:v1", "quay.io/org/app@sha256:\(hex64)", "quay.io/org/app:v1@sha256:\(hex64)",
        "127.0.0.1:5000/a/b/c:t", "[::1]:5000/app:x", "localhost/app:v", "index.docker.io/library/alpine:3",
        "index.docker.io/user/app:v", "alpine", "alpine:3.19", "docker.io/user/app:v1", "registry-1.docker.io/a/b:c",
        "index.docker.io/alpine:edge", "quay.io/org/app", "user/app@sha256:\(hex64)",
    ])
    func aReferenceIsTheOneBuiltFromItsParts(text: String) throws {
        let parsed = try ImageReference.parse(text)
        let built = ImageReference(
            registry: parsed.registry, repository: parsed.repository, tag: parsed.tag, digest: parsed.digest)
        #expect(parsed.description == built.description)
        #expect(parsed.name == built.name)
        #expect(parsed.tag == built.tag)
        #expect(parsed.digest == built.digest)
        #expect(try ImageReference.parse(parsed.description).description == parsed.description)
    }

    @Test func digestReferences() throws {
        let ref = try ImageReference.parse("quay.io/org/app@sha256:\(hex64)")
        #expect(ref.digest?.description == "sha256:\(hex64)")
        #expect(ref.tag == nil)
        #expect(ref.identifier == "sha256:\(hex64)")
        #expect(ref.description == "quay.io/org/app@sha256:\(hex64)")
    }

    @Test func digestWinsOverTag() throws {
        let ref = try ImageReference.parse("quay.io/org/app:v1@sha256:\(hex64)")
        #expect(ref.tag == "v1")
        #expect(ref.identifier == "sha256:\(hex64)")
        #expect(ref.pinned(to: ref.digest!).description == "quay.io/org/app@sha256:\(hex64)")
    }

    @Test func sha512IsSupported() throws {
        let ref = try ImageReference.parse("r.example/app@sha512:" + String(repeating: "0", count: 128))
        #expect(ref.digest?.algorithm == .sha512)
    }

    @Test(arguments: [
        "", "app@", "app@@sha256:\(String(repeating: "a", count: 64))", "app@sha256:abc",
        "app@sha256:\(String(repeating: "g", count: 64))", "app@sha256:\(String(repeating: "A", count: 64))",
        "app@md5:\(String(repeating: "a", count: 32))", "app:", "app:-bad", "app:t@g",
        "app:" + String(repeating: "t", count: 129), "App", "registry.example/Org/app", "registry.example/",
        "registry.example//app", "app/", "a..b", "a_-b", "-a", "a b", "registry.example:99999/app",
        "registry.example/app:tag:more",
    ])
    func invalidReferencesAreRefused(text: String) {
        #expect(throws: ReferenceError.self) { try ImageReference.parse(text) }
    }

    @Test func longestTagIsAccepted() throws {
        let tag = String(repeating: "t", count: 128)
        #expect(try ImageReference.parse("app:\(tag)").tag == tag)
    }
}

@Suite struct RegistrySchemeChoice {
    @Test func plainHTTPForLoopbackAndPrivateAddresses() {
        let scheme = RegistryScheme()
        for registry in [
            "localhost", "localhost:5000", "LocalHost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "10.1.2.3",
            "172.16.0.1:443", "172.31.255.255", "192.168.1.1:5000",
        ] {
            #expect(scheme.scheme(for: registry) == "http", "\(registry)")
        }
        for registry in [
            "index.docker.io", "quay.io", "172.32.0.1", "11.0.0.1", "127.0.0.1.example", "1270.0.0.1", "10.0.0",
            "10.0.0.1.", "10..0.1", "10.0.0.256", "192.169.0.1:5000", "registry.example:5000",
        ] {
            #expect(scheme.scheme(for: registry) == "https", "\(registry)")
        }
    }

    /// curl reads `010.0.0.1` as octal (8.0.0.1) and `0x7f.0.0.1` as hex: only
    /// a canonical dotted quad may be taken for a private address.
    @Test func nonCanonicalDottedQuadsAreHostNamesAndGetHTTPS() {
        let scheme = RegistryScheme()
        for registry in [
            "010.0.0.1", "010.0.0.1:5000", "172.016.0.1", "192.168.01.1", "127.0.0.01", "0127.0.0.1",
            "0x7f.0.0.1", "00.0.0.0", "10.0.0.00",
        ] {
            #expect(scheme.scheme(for: registry) == "https", "\(registry)")
        }
        for registry in ["10.0.0.0", "172.16.0.0:5000", "127.0.0.1"] {
            #expect(scheme.scheme(for: registry) == "http", "\(registry)")
        }
    }

    @Test func insecureRegistriesByHostOrHostAndPort() {
        let scheme = RegistryScheme(insecureRegistries: ["registry.example:5000", "other.example"])
        #expect(scheme.scheme(for: "registry.example:5000") == "http")
        #expect(scheme.scheme(for: "registry.example") == "https")
        #expect(scheme.scheme(for: "other.example:8443") == "http")
    }
}

@Suite struct DigestComputation {
    @Test func knownSHA256AndSHA512Values() {
        #expect(
            Digest.of(Array("".utf8)).description
                == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Digest.of(Array("abc".utf8)).description
                == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Digest.of(Array("abc".utf8), algorithm: .sha512).hex
                == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        )
    }

    @Test func streamingEqualsOneShot() {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let hasher = DigestHasher(.sha256)
        var offset = 0
        while offset < data.count {
            let end = min(offset + 777, data.count)
            hasher.update(data[offset..<end])
            offset = end
        }
        #expect(hasher.finalize() == Digest.of(data))
    }

    @Test func parsingChecksAlgorithmAndHex() {
        #expect(Digest("sha256:\(hex64)") != nil)
        #expect(Digest("sha256:\(hex64.dropLast())") == nil)
        #expect(Digest("sha384:\(hex64)") == nil)
        #expect(Digest(hex64) == nil)
    }

    /// The grammar both parsers follow, as plainly as it can be said.
    private func isDigest(_ bytes: [UInt8]) -> Bool {
        let isHex = { (byte: UInt8) in (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) }
        for (name, length) in [("sha256:", 64), ("sha512:", 128)] where bytes.starts(with: Array(name.utf8)) {
            return bytes.count == name.utf8.count + length && bytes.dropFirst(name.utf8.count).allSatisfy(isHex)
        }
        return false
    }

    @Test func aDigestParsedFromBytesIsTheOneParsedFromText() {
        let hex128 = hex64 + String(hex64.reversed())
        // Every byte value at every place (the hex is checked eight bytes at a time).
        let replacements = (0...255).map { UInt8($0) }
        var checked = 0
        for valid in ["sha256:\(hex64)", "sha512:\(hex128)"] {
            let original = Array(valid.utf8)
            var cases = [original, Array(original.dropLast()), original + [0x61], [], Array("sha256".utf8)]
            for place in original.indices {
                for byte in replacements {
                    var changed = original
                    changed[place] = byte
                    cases.append(changed)
                }
            }
            for bytes in cases {
                let fromBytes = bytes.withUnsafeBufferPointer { Digest(utf8: $0) }
                #expect(fromBytes == Digest(String(decoding: bytes, as: UTF8.self)))
                #expect((fromBytes != nil) == isDigest(bytes))
                if let fromBytes { #expect(Array(fromBytes.description.utf8) == bytes) }
                checked += 1
            }
        }
        #expect(checked > 50_000)
    }
}

/// Found by fuzzing: a long one-component Docker Hub name that was valid
/// until `library/` was added, so its canonical form did not parse back.
@Suite struct ReferenceLengthLimit {
    @Test func theLimitCountsTheNormalisedNameAndCanonicalFormsParseBack() throws {
        let long = String(repeating: "l", count: 240)
        #expect(throws: ReferenceError.self) { try ImageReference.parse("x" + long) }
        let fits = try ImageReference.parse(String(repeating: "a", count: 200))
        #expect(try ImageReference.parse(fits.description) == fits)
        let atLimit = "r.io/" + String(repeating: "b", count: 250)
        #expect(try ImageReference.parse(atLimit).name.utf8.count == 255)
        #expect(throws: ReferenceError.self) { try ImageReference.parse(atLimit + "b") }
    }
}
