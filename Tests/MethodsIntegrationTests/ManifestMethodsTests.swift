import Foundation
import JSON
import Registry
import Testing
import TestFixtures

@Suite(.serialized, .needsDockerRegistry) struct ManifestMethodsTests {
    /// An index entry's platform: `linux/amd64`.
    static let amd64 = #"{"os":"linux","architecture":"amd64"}"#

    /// Pushes image `a` of `repository`, whose one layer holds
    /// `etc/policy.yaml` (`allowed: false`), and image `b`, of no layers;
    /// their configs tell them apart (`{"image":"a"}`, `{"image":"b"}`).
    static func pushTwoImages(_ rig: Rig, _ repository: String) async throws -> (
        a: TestRegistry.Pushed, b: TestRegistry.Pushed
    ) {
        var tar = TarBuilder()
        tar.file("etc/policy.yaml", "allowed: false")
        let a = try await rig.registry.pushImage(
            repository, "a", config: #"{"image":"a"}"#,
            layers: [(tar.archive, "application/vnd.oci.image.layer.v1.tar")])
        let b = try await rig.registry.pushImage(repository, "b", config: #"{"image":"b"}"#)
        return (a, b)
    }

    @Test func imageManifestOfAnOCIImageByTagAndByDigest() async throws {
        let rig = try await Rig.start()
        let layer = Compressors.gzip(TarBuilder().archive)
        let config = #"{"config":{"Labels":{"a":"b"}}}"#
        let pushed = try await rig.registry.pushImage(
            "team/app", "v1", config: config, layers: [(layer, Expected.gzipLayer)],
            extra: #","annotations":{"org.opencontainers.image.title":"app"}"#)
        let expected: JSONValue = [
            "schemaVersion": 2, "mediaType": .string(Expected.oci),
            "config": Expected.descriptor(
                Expected.ociConfig, config.utf8.count, Digest.of(Array(config.utf8)).description),
            "layers": [Expected.descriptor(Expected.gzipLayer, layer.count, Digest.of(layer).description)],
            "annotations": ["org.opencontainers.image.title": "app"],
        ]
        #expect(try await rig.session.result("ec.oci.image_manifest", [.string(rig.ref("team/app", "v1"))]) == expected)
        #expect(
            try await rig.session.result("ec.oci.image_manifest", ["ref": .string(rig.ref("team/app", pushed.digest))])
                == expected)
        await rig.stop()
    }

    @Test func imageManifestOfADockerSchema2Image() async throws {
        let rig = try await Rig.start()
        let pushed = try await rig.registry.pushImage("docker/app", "latest", docker: true)
        let result = try await rig.session.result("ec.oci.image_manifest", [.string(rig.ref("docker/app", "latest"))])
        #expect(
            result == [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.dockerManifest),
                "config": Expected.descriptor(
                    "application/vnd.docker.container.image.v1+json", 2, Digest.of(Array("{}".utf8)).description),
                "layers": [], "annotations": [:],
            ])
        let descriptor = try await rig.session.result("ec.oci.descriptor", [.string(rig.ref("docker/app", "latest"))])
        #expect(descriptor == Expected.descriptor(ManifestMediaType.dockerManifest, pushed.size, pushed.digest))
        await rig.stop()
    }

    @Test func indexesResolveToThePlatformAskedFor() async throws {
        let rig = try await Rig.start()
        let amd = try await rig.registry.pushImage("multi", "amd", config: #"{"architecture":"amd64"}"#)
        let arm = try await rig.registry.pushImage("multi", "arm", config: #"{"architecture":"arm64"}"#)
        let index = try await rig.registry.pushIndex(
            "multi", "v1",
            entries: [
                (arm, #"{"os":"linux","architecture":"arm64","variant":"v8"}"#),
                (amd, #"{"os":"linux","architecture":"amd64"}"#),
            ])
        let ref = rig.ref("multi", "v1")
        let byDefault = try await rig.session.result("ec.oci.image_manifest", [.string(ref)])
        #expect(byDefault["config"]?["size"] == .integer(#"{"architecture":"amd64"}"#.utf8.count))
        let arm64 = try await rig.session.result(
            "ec.oci.image_manifest", ["ref": .string(ref), "platform": "linux/arm64"])
        #expect(arm64["config"]?["size"] == .integer(#"{"architecture":"arm64"}"#.utf8.count))
        let none = try await rig.session.call(
            "ec.oci.image_manifest", ["ref": .string(ref), "platform": "linux/s390x"])
        #expect(none.errorCode == -32006)
        #expect(none.errorReason == "no_matching_platform")

        let shaped = try await rig.session.result("ec.oci.image_index", [.string(ref)])
        #expect(
            shaped == [
                "schemaVersion": 2, "mediaType": .string(ManifestMediaType.ociIndex),
                "manifests": [
                    Expected.descriptor(
                        Expected.oci, arm.size, arm.digest, platform: Expected.platform("linux", "arm64", variant: "v8")
                    ),
                    Expected.descriptor(
                        Expected.oci, amd.size, amd.digest, platform: Expected.platform("linux", "amd64")),
                ],
                "annotations": [:],
            ])
        let notIndex = try await rig.session.call("ec.oci.image_index", [.string(rig.ref("multi", "amd"))])
        #expect(notIndex.errorReason == "unexpected_media_type")
        let descriptor = try await rig.session.result("ec.oci.descriptor", [.string(rig.ref("multi", index.digest))])
        #expect(descriptor == Expected.descriptor(ManifestMediaType.ociIndex, index.size, index.digest))
        await rig.stop()
    }

    /// An index with an entry written otherwise than the platform asked
    /// for, which runtimes that normalise platform names (containerd) take
    /// for it too: which image would run cannot be told, so the answer is
    /// refused, wherever that entry stands. An entry for another platform
    /// leaves the index as it was.
    @Test(arguments: [
        (#"{"os":"linux","architecture":"x86_64"}"#, true), (#"{"os":"Linux","architecture":"amd64"}"#, true),
        (#"{"os":"","architecture":"AMD64"}"#, true), (#"{"os":"linux","architecture":"arm64"}"#, false),
        (#"{"os":"windows","architecture":"amd64"}"#, false),
        // containerd lowers with Go's strings.ToLower, which makes `İ` an `i`.
        (#"{"os":"l\u0130nux","architecture":"amd64"}"#, true),
    ])
    func anIndexWithAnEntryRuntimesTakeForThePlatformTooIsRefused(other: String, ambiguous: Bool) async throws {
        let rig = try await Rig.start()
        let a = try await rig.registry.pushImage("multi", "a", config: #"{"image":"a"}"#)
        let b = try await rig.registry.pushImage("multi", "b", config: #"{"image":"b"}"#)
        for order in ["other first", "other last"] {
            let entries = [(a, other), (b, #"{"os":"linux","architecture":"amd64"}"#)]
            try await rig.registry.pushIndex(
                "multi", order == "other first" ? "v1" : "v2",
                entries: order == "other first" ? entries : entries.reversed())
            let answer = try await rig.session.call(
                "ec.oci.image_manifest", [.string(rig.ref("multi", order == "other first" ? "v1" : "v2"))])
            if ambiguous {
                #expect(answer.errorReason == "ambiguous_platform", "\(order): \(answer.jsonText)")
                #expect(answer.errorCode == -32006)
            } else {
                #expect(
                    answer["result"]?["config"]?["size"] == .integer(#"{"image":"b"}"#.utf8.count),
                    "\(order): \(answer.jsonText)")
            }
        }
        await rig.stop()
    }

    /// An entry that names no platform (none, or `null`) is `linux/amd64`,
    /// as go-containerregistry takes it (the original answered; this
    /// server said `no_matching_platform`, which a policy may take as
    /// absence), and containerd takes it for any platform, ranked after
    /// those that name one: picked first with a later entry naming the
    /// platform, which image would run cannot be told. For another
    /// platform the original finds none, and containerd runs it when its
    /// config names that platform: which image would run cannot be told
    /// either (it was `no_matching_platform`).
    @Test(arguments: ["", "null"])
    func anEntryThatNamesNoPlatformIsLinuxAMD64(unnamed: String) async throws {
        let rig = try await Rig.start()
        let a = try await rig.registry.pushImage("multi", "a", config: #"{"image":"a"}"#)
        let b = try await rig.registry.pushImage("multi", "b", config: #"{"image":"b"}"#)
        let amd64 = #"{"os":"linux","architecture":"amd64"}"#
        let arm64 = #"{"os":"linux","architecture":"arm64"}"#
        try await rig.registry.pushIndex("multi", "alone", entries: [(b, arm64), (a, unnamed)])
        try await rig.registry.pushIndex("multi", "named-first", entries: [(b, amd64), (a, unnamed)])
        try await rig.registry.pushIndex("multi", "unnamed-first", entries: [(a, unnamed), (b, amd64)])
        func answer(_ tag: String, _ platform: String = "linux/amd64") async throws -> JSONValue {
            try await rig.session.call(
                "ec.oci.image_manifest", ["ref": .string(rig.ref("multi", tag)), "platform": .string(platform)])
        }
        let aSize = JSONValue.integer(#"{"image":"a"}"#.utf8.count)
        let bSize = JSONValue.integer(#"{"image":"b"}"#.utf8.count)
        let alone = try await answer("alone")
        #expect(alone["result"]?["config"]?["size"] == aSize, "\(alone.jsonText)")
        let namedFirst = try await answer("named-first")
        #expect(namedFirst["result"]?["config"]?["size"] == bSize, "\(namedFirst.jsonText)")
        let unnamedFirst = try await answer("unnamed-first")
        #expect(unnamedFirst.errorReason == "ambiguous_platform", "\(unnamedFirst.jsonText)")
        // Another platform: a named entry for it is read, as in the
        // original; with none, containerd goes by the unnamed entry's config.
        let arm = try await answer("alone", "linux/arm64")
        #expect(arm["result"]?["config"]?["size"] == bSize, "\(arm.jsonText)")
        let s390x = try await answer("alone", "linux/s390x")
        #expect(s390x.errorReason == "ambiguous_platform", "\(s390x.jsonText)")
        await rig.stop()
    }

    /// containerd (so Docker, and Kubernetes on it) takes an entry's variant
    /// at its word, and runs on a node what it also runs besides its own
    /// platform (`386` on `amd64`); the original takes the first entry of
    /// the platform's `os` and `architecture`, whatever its variant. Where
    /// they would run different images the call is refused: an image
    /// whose `amd64/v2` entry came first was the one a policy saw, while
    /// every containerd node ran the plain `amd64` entry after it.
    @Test func anIndexWhoseEntryContainerdRunsIsAnotherThanTheOriginalsIsAmbiguous() async throws {
        let rig = try await Rig.start()
        let a = try await rig.registry.pushImage("variants", "a", config: #"{"image":"a"}"#)
        let b = try await rig.registry.pushImage("variants", "b", config: #"{"image":"b"}"#)
        let amd64v2 = #"{"os":"linux","architecture":"amd64","variant":"v2"}"#
        let amd64 = #"{"os":"linux","architecture":"amd64"}"#
        let i386 = #"{"os":"linux","architecture":"386"}"#
        try await rig.registry.pushIndex("variants", "v2-first", entries: [(a, amd64v2), (b, amd64)])
        try await rig.registry.pushIndex("variants", "plain-first", entries: [(b, amd64), (a, amd64v2)])
        try await rig.registry.pushIndex("variants", "386", entries: [(a, i386)])
        try await rig.registry.pushIndex("variants", "v2-and-386", entries: [(a, amd64v2), (b, i386)])
        func answer(_ tag: String) async throws -> JSONValue {
            try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("variants", tag))])
        }
        for tag in ["v2-first", "386", "v2-and-386"] {
            let refused = try await answer(tag)
            #expect(refused.errorReason == "ambiguous_platform", "\(tag): \(refused.jsonText)")
            #expect(refused.errorCode == -32006)
        }
        // Both take the plain entry that comes first.
        let plainFirst = try await answer("plain-first")
        #expect(plainFirst["result"]?["config"]?["size"] == .integer(#"{"image":"b"}"#.utf8.count))
        // A variant of any level asked for is ranked, not listed: listing
        // the levels below this one as containerd does ended the server.
        let highest = try await rig.session.call(
            "ec.oci.image_manifest",
            ["ref": .string(rig.ref("variants", "v2-first")), "platform": "linux/amd64/v9223372036854775807"])
        #expect(highest.errorReason == "ambiguous_platform", "\(highest.jsonText)")
        #expect(try await rig.session.call("server.stats", [])["result"] != nil)
        await rig.stop()
    }

    /// An index whose entry for the platform is another index is followed
    /// for the platform in turn, as the original (go-containerregistry's
    /// `Descriptor.Image`) and runtimes (containerd's `images.Manifest`)
    /// follow it: it was `unexpected_media_type`, which a policy may let
    /// be undefined, so an image pushed behind two indexes passed every
    /// deny rule over its manifest and files. A chain deeper than the
    /// server follows is a limit of its own.
    @Test func anIndexWhoseEntryIsAnotherIndexIsFollowed() async throws {
        let rig = try await Rig.start()
        let (a, b) = try await Self.pushTwoImages(rig, "nest")
        let amd64 = Self.amd64
        let arm64 = #"{"os":"linux","architecture":"arm64"}"#
        let inner = try await rig.registry.pushIndex("nest", "inner", entries: [(b, arm64), (a, amd64)])
        let outer = try await rig.registry.pushIndex(
            "nest", "outer", entries: [(inner, amd64)], entriesAreIndexes: true)
        // The indexes below the first that the server follows (SECURITY.md).
        let followed = 8
        var chain = [inner]
        for level in 1...followed + 1 {
            chain.append(
                try await rig.registry.pushIndex(
                    "nest", "chain-\(level)", entries: [(chain[level - 1], "")], entriesAreIndexes: true))
        }

        let manifest = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("nest", "outer"))])
        #expect(
            manifest["result"]?["config"]?["size"] == .integer(#"{"image":"a"}"#.utf8.count), "\(manifest.jsonText)")
        let files = try await rig.session.call(
            "ec.oci.image_files", [.string(rig.ref("nest", outer.digest)), ["etc"]])
        #expect(files["result"] == ["etc/policy.yaml": ["allowed": false]], "\(files.jsonText)")
        let arm = try await rig.session.call(
            "ec.oci.image_manifest", ["ref": .string(rig.ref("nest", outer.digest)), "platform": "linux/arm64"])
        #expect(arm.errorReason == "no_matching_platform", "\(arm.jsonText)")
        // As deep as the server follows: the top, and that many below it.
        let deepest = try await rig.session.call(
            "ec.oci.image_manifest", [.string(rig.ref("nest", "chain-\(followed)"))])
        #expect(deepest["result"]?["config"]?["size"] == .integer(#"{"image":"a"}"#.utf8.count), "\(deepest.jsonText)")
        let tooDeep = try await rig.session.call(
            "ec.oci.image_files",
            [.string(rig.ref("nest", chain[followed + 1].digest)), ["etc"]])
        #expect(tooDeep.errorCode == -32005, "\(tooDeep.jsonText)")
        #expect(tooDeep.errorReason == "too_many_indexes")
        await rig.stop()
    }

    /// A manifest an index's entry gives as the other kind (an image
    /// manifest as an index, an index as an image manifest) is
    /// `ambiguous_manifest`: the original reads it as the entry says (an
    /// index read as an image lists no layers, an image read as an index
    /// has no entry for the platform), containerd refuses it, and the
    /// server read it by its bytes and `Content-Type`, so a policy saw an
    /// image the original did not.
    @Test func aManifestItsIndexEntryGivesAsTheOtherKindIsAmbiguous() async throws {
        let rig = try await Rig.start()
        let a = try await rig.registry.pushImage("kinds", "a", config: #"{"image":"a"}"#)
        let amd64 = #"{"os":"linux","architecture":"amd64"}"#
        let inner = try await rig.registry.pushIndex("kinds", "inner", entries: [(a, amd64)])
        let imageAsIndex = try await rig.registry.pushIndex(
            "kinds", "image-as-index", entries: [(a, amd64)], entriesAreIndexes: true)
        let indexAsImage = try await rig.registry.pushIndex("kinds", "index-as-image", entries: [(inner, amd64)])
        try await rig.registry.pushIndex("kinds", "agreeing", entries: [(inner, amd64)], entriesAreIndexes: true)
        // Embedded, the manifest is the entry's media type: read by its fields.
        let embedded = try await rig.registry.pushIndex(
            "kinds", "embedded-image-as-index", entries: [(a, amd64)], entriesAreIndexes: true, embedding: [a.bytes])
        for index in [imageAsIndex, indexAsImage, embedded] {
            let ref = JSONValue.string(rig.ref("kinds", index.digest))
            for (method, params) in [("ec.oci.image_manifest", [ref]), ("ec.oci.image_files", [ref, ["etc"]])] {
                let refused = try await rig.session.call(method, .array(params))
                #expect(refused.errorReason == "ambiguous_manifest", "\(method): \(refused.jsonText)")
                #expect(refused.errorCode == -32006)
            }
        }
        let agreeing = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("kinds", "agreeing"))])
        #expect(
            agreeing["result"]?["config"]?["size"] == .integer(#"{"image":"a"}"#.utf8.count), "\(agreeing.jsonText)")
        await rig.stop()
    }

    /// An index entry that embeds its manifest (`data`) is read from there,
    /// checked against its digest and size, before the registry is asked,
    /// as the original reads it (go-containerregistry's `childDescriptor`).
    /// The server asked the registry: an image whose manifest the registry
    /// no longer held was `manifest_unknown` where the original answered,
    /// and a policy may let that be undefined, so such an image passed
    /// every deny rule over it. Embedded bytes that are not the entry's
    /// manifest are `digest_mismatch`, as the original fails on them, even
    /// where the registry holds the right ones.
    @Test func anIndexEntrysEmbeddedManifestIsReadBeforeTheRegistryIsAsked() async throws {
        let rig = try await Rig.start()
        let (a, b) = try await Self.pushTwoImages(rig, "embed")
        let amd64 = Self.amd64
        let index = try await rig.registry.pushIndex("embed", "index", entries: [(a, amd64)], embedding: [a.bytes])
        // The entry names b, and embeds a's manifest.
        let wrong = try await rig.registry.pushIndex("embed", "wrong", entries: [(b, amd64)], embedding: [a.bytes])
        try await rig.registry.deleteManifest("embed", a.digest)

        let manifest = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("embed", "index"))])
        #expect(
            manifest["result"]?["config"]?["size"] == .integer(#"{"image":"a"}"#.utf8.count), "\(manifest.jsonText)")
        let files = try await rig.session.call(
            "ec.oci.image_files", [.string(rig.ref("embed", index.digest)), ["etc"]])
        #expect(files["result"] == ["etc/policy.yaml": ["allowed": false]], "\(files.jsonText)")
        // The index, and no manifest of its entry's.
        let stats = try await rig.session.result("server.stats", [])
        #expect(stats["registryRequests"]?["manifest"] == 1, "\(stats.jsonText)")
        let wrongRef = JSONValue.string(rig.ref("embed", wrong.digest))
        for (method, params) in [("ec.oci.image_manifest", [wrongRef]), ("ec.oci.image_files", [wrongRef, ["etc"]])] {
            let refused = try await rig.session.call(method, .array(params))
            #expect(refused.errorReason == "digest_mismatch", "\(method): \(refused.jsonText)")
            #expect(refused.errorCode == -32003)
        }
        await rig.stop()
    }

    @Test func aManifestIsTakenFromTheMemoryBudgetWhileACallHoldsIt() async throws {
        // A budget of 256 KiB: a manifest of 300 KB cannot be held, one of
        // 60 KB (not counted) can; once answered nothing stays taken,
        // though the cache keeps the manifest. The bytes are mostly blanks,
        // so the answers are small: only holding the manifests can take the
        // budget.
        let rig = try await Rig.start(arguments: ["--max-memory-bytes", "256KiB"])
        let largeImage = try await rig.registry.pushMinimalImage(
            "held", "large", annotations: #"{"p":"large"}"# + String(repeating: " ", count: 300_000))
        let smallImage = try await rig.registry.pushMinimalImage(
            "held", "small", annotations: #"{"p":"small"}"# + String(repeating: " ", count: 60_000))
        #expect(smallImage.manifest.count <= 64 << 10)
        #expect(largeImage.manifest.count > 300_000)
        let largeRef = rig.ref("held", "large"), smallRef = rig.ref("held", "small")
        for ref in [largeRef, rig.ref("held", largeImage.digest)] {
            let refused = try await rig.session.call("ec.oci.image_manifest", [.string(ref)])
            #expect(refused.errorCode == -32005)
            #expect(refused.errorReason == "memory_limit")
            #expect(refused["error"]?["data"]?["retryable"] == true)
            #expect(refused["error"]?["data"]?["ref"] == .string(ref))
        }
        // A batch does not leave such a ref out as if it had failed: it fails,
        // retryably. Streamed, the ref's own error says so.
        let batch = try await rig.session.call("ec.oci.image_manifests", [[.string(smallRef), .string(largeRef)]])
        #expect(batch.errorReason == "memory_limit")
        #expect(batch["error"]?["data"]?["retryable"] == true)
        let id = rig.session.send("ec.oci.image_manifests", ["refs": [.string(largeRef)], "partialResultToken": "t"])
        #expect(try await rig.session.response(id)["result"] == [:])
        let streamed = rig.session.process.messages.filter { $0["params"]?["token"] == "t" }
        #expect(streamed.count == 1)
        #expect(streamed.first?["params"]?["value"]?["error"]?["data"]?["reason"] == "memory_limit")
        // What does not hold the body is answered.
        let descriptor = try await rig.session.result("ec.oci.descriptor", [.string(largeRef)])
        #expect(descriptor["digest"] == .string(largeImage.digest))
        let answered = try await rig.session.result("ec.oci.image_manifest", [.string(smallRef)])
        #expect(answered["annotations"]?["p"] == "small")

        let held = try await rig.memoryHeldOnceSettled()
        #expect(held?["used"] == 0)
        #expect(held?["budget"] == .integer(256 << 10))
        await rig.stop()
    }

    /// Shaping an answer from a large manifest holds its tape and the
    /// answer written: taken from the memory budget before it starts
    /// (`ShapingCharge`), even when the manifest itself fits, and given
    /// back when it is done. Reading layers from one holds its tape only.
    @Test func shapingAnAnswerFromALargeManifestIsTakenFromTheMemoryBudget() async throws {
        // 16 MiB: room for a 100 KB manifest and shaping its answer (10.5
        // MB), and for a 300 KB one and its tape (2.7 MB), but not for
        // shaping an answer from that (31 MB). 2 MiB: not for its tape.
        for budget in ["16MiB", "2MiB"] {
            let rig = try await Rig.start(arguments: ["--max-memory-bytes", budget])
            let large = try await rig.registry.pushMinimalImage(
                "shaped", "large", annotations: #"{"p":"large"}"# + String(repeating: " ", count: 300_000))
            try await rig.registry.pushMinimalImage(
                "shaped", "small", annotations: #"{"p":"small"}"# + String(repeating: " ", count: 100_000))
            let largeRef = JSONValue.string(rig.ref("shaped", "large"))
            let files = try await rig.session.call(
                "ec.oci.image_files", [.string(rig.ref("shaped", large.digest)), ["etc/x"]])
            if budget == "16MiB" {
                for method in ["ec.oci.image_manifest", "ec.oci.image_index"] {
                    let refused = try await rig.session.call(method, [largeRef])
                    #expect(refused.errorReason == "memory_limit", "\(method)")
                    #expect(refused["error"]?["data"]?["retryable"] == true)
                }
                let small = try await rig.session.result("ec.oci.image_manifest", [.string(rig.ref("shaped", "small"))])
                #expect(small["annotations"]?["p"] == "small")
                #expect(files["result"] == [:])
            } else {
                #expect(files.errorReason == "memory_limit")
            }
            let held = try await rig.memoryHeldOnceSettled()
            #expect(held?["used"] == 0)
            await rig.stop()
        }
    }

    @Test func missingThingsAndBadRefsAreTypedErrors() async throws {
        let rig = try await Rig.start()
        try await rig.registry.pushMinimalImage("present", "v1")
        let missingTag = try await rig.session.call("ec.oci.image_manifest", [.string(rig.ref("present", "nope"))])
        #expect(missingTag.errorCode == -32001)
        #expect(missingTag.errorReason == "manifest_unknown")
        #expect(missingTag["error"]?["data"]?["ref"] == .string(rig.ref("present", "nope")))
        #expect(missingTag["error"]?["data"]?["httpStatus"] == 404)
        let badRef = try await rig.session.call("ec.oci.descriptor", ["Upper/Case"])
        #expect(badRef.errorCode == -32602)
        #expect(badRef.errorReason == "invalid_reference")
        let wrongType = try await rig.session.call("ec.oci.image_manifest", [42])
        #expect(wrongType.errorCode == -32602)
        // The server keeps serving after all of that.
        #expect(
            try await rig.session.result("ec.oci.image_manifest", [.string(rig.ref("present", "v1"))])["schemaVersion"]
                == 2)
        await rig.stop()
    }

    @Test func tagRefsListTheCosignTagsThatExist() async throws {
        let rig = try await Rig.start()
        let image = try await rig.registry.pushMinimalImage("signed", "v1")
        let hex = String(image.digest.dropFirst("sha256:".count))
        try await rig.registry.pushMinimalImage("signed", "sha256-\(hex).sig")
        try await rig.registry.pushMinimalImage("signed", "sha256-\(hex).att")
        let refs = try await rig.session.result("ec.oci.image_tag_refs", [.string(rig.ref("signed", "v1"))])
        #expect(
            refs == [
                .string("\(rig.registry.host)/signed:sha256-\(hex).sig"),
                .string("\(rig.registry.host)/signed:sha256-\(hex).att"),
            ])
        await rig.stop()
    }

    @Test func referrersComeFromTheTagSchemaFallback() async throws {
        let rig = try await Rig.start()
        let image = try await rig.registry.pushMinimalImage("withrefs", "v1")
        let lonely = try await rig.registry.pushMinimalImage("withrefs", "v2", annotations: #"{"x":"y"}"#)
        let sbom = try await rig.registry.pushMinimalImage("withrefs", "sbom", annotations: #"{"kind":"sbom"}"#)
        let hex = String(image.digest.dropFirst("sha256:".count))
        let index =
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":\#(sbom.manifest.count),"digest":"\#(sbom.digest)","artifactType":"application/spdx+json","annotations":{"kind":"sbom"}}]}"#
        try await rig.registry.pushManifest(
            "withrefs", "sha256-\(hex)", Data(index.utf8), mediaType: ManifestMediaType.ociIndex)
        let referrers = try await rig.session.result("ec.oci.image_referrers", [.string(rig.ref("withrefs", "v1"))])
        #expect(
            referrers == [
                [
                    "mediaType": .string(Expected.oci), "size": .integer(sbom.manifest.count),
                    "digest": .string(sbom.digest),
                    "artifactType": "application/spdx+json",
                    "ref": .string("\(rig.registry.host)/withrefs@\(sbom.digest)"),
                    "annotations": ["kind": "sbom"],
                ]
            ])
        #expect(
            try await rig.session.result("ec.oci.image_referrers", [.string(rig.ref("withrefs", lonely.digest))]) == [])
        await rig.stop()
    }

    @Test func basicAuthCredentialsComeFromTheDockerConfig() async throws {
        let registry = try await TestRegistry(auth: .basic(user: "alice", password: "s3cret-pw"))
        let config = try DockerConfigDirectory.make(host: registry.host, user: "alice", password: "s3cret-pw")
        defer { try? FileManager.default.removeItem(at: config) }
        let image = try await registry.pushMinimalImage("private/app", "v1")
        let session = try RPCSession(["--log-level", "debug"], environment: ["DOCKER_CONFIG": config.path])
        let ref = "\(registry.host)/private/app:v1"
        let result = try await session.result("ec.oci.image_manifest", [.string(ref)])
        #expect(result["config"]?["size"] == 2)
        let descriptor = try await session.result(
            "ec.oci.descriptor", [.string("\(registry.host)/private/app@\(image.digest)")])
        #expect(descriptor["digest"] == .string(image.digest))
        let stats = try await session.result("server.stats", [])
        await session.close()
        registry.stop()
        // No credential in anything the server wrote.
        let everything =
            String(decoding: session.process.stdout, as: UTF8.self) + session.process.stderr + stats.jsonText
        #expect(!everything.contains("s3cret-pw"))
        #expect(!everything.contains(Data("alice:s3cret-pw".utf8).base64EncodedString()))
    }

    @Test func libcurlIsLoadedByTheFirstRegistryRequestNotAtStartUp() async throws {
        let rig = try await Rig.start()
        try await rig.registry.pushMinimalImage("lazy/app", "v1")
        let maps = "/proc/\(rig.session.process.process.processIdentifier)/maps"
        // Read to the end: /proc files report a size of 0.
        func libcurlMapped() throws -> Bool {
            let text = String(
                decoding: FileHandle(forReadingAtPath: maps)?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            #expect(text.contains("libc.so"), "the maps were read")
            return text.contains("libcurl")
        }
        _ = try await rig.session.result("initialize", [:])
        #expect(try !libcurlMapped())
        _ = try await rig.session.result("ec.oci.image_manifest", [.string(rig.ref("lazy/app", "v1"))])
        #expect(try libcurlMapped())
        await rig.stop()
    }
}
