import Foundation
import JSON
import Registry
import Testing
import TestFixtures

/// A referrers listing in pages (`Link: <...>; rel="next"`), through the
/// binary: read to its end, or an error; never a listing cut short, and
/// never a request beyond the listing's own URL.
@Suite struct ReferrersPagesTests {
    typealias Rig = HostileRegistryTests.Rig

    /// The referrer numbered `number`: its annotation `n` says which.
    static func referrer(_ number: Int, padding: Int = 0) -> String {
        let digest = Digest.of(Array("referrer \(number)".utf8), algorithm: .sha256)
        let pad = padding > 0 ? #","pad":"\#(String(repeating: "p", count: padding))""# : ""
        return
            #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":10,"digest":"\#(digest)","artifactType":"application/x-test","annotations":{"n":"\#(number)"\#(pad)}}"#
    }

    static func index(_ referrers: [String]) -> [UInt8] {
        Array(
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(referrers.joined(separator: ","))]}"#
                .utf8)
    }

    /// Serves the referrers of every subject in pages: `page(number)`
    /// (1 for the listing's own URL, else its `page` query) gives a page's
    /// referrers and `Link` values, or a reply of its own.
    static func serve(
        _ rig: Rig, page: @escaping @Sendable (Int) -> (referrers: [String], links: [String])?,
        otherwise: @escaping @Sendable (Int) -> TestHTTPReply = { _ in HostileRegistry.registryError(404, "NOT_FOUND") }
    ) {
        rig.registry.script { request in
            guard request.path.contains("/referrers/") else { return nil }
            let number = request.query["page"].flatMap { Int($0) } ?? 1
            guard let found = page(number) else { return otherwise(number) }
            return .response(
                status: 200,
                headers: [("Content-Type", "application/vnd.oci.image.index.v1+json")]
                    + found.links.map { ("Link", $0) },
                body: index(found.referrers))
        }
    }

    func referrersRequests(_ rig: Rig) -> [String] {
        rig.registry.requests.filter { $0.path.contains("/referrers/") }.map(\.target)
    }

    @Test func aListingInPagesIsReadToItsEndInOrder() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        let listing = "/v2/app/referrers/\(image)"
        Self.serve(rig) { number in
            switch number {
            case 1: return ([Self.referrer(0), Self.referrer(1)], [#"<\#(listing)?page=2>; rel="next""#])
            // Two Link fields, read as one (the last alone names no next page).
            case 2: return ([Self.referrer(2)], [#"<?page=3>; rel="next""#, #"<\#(listing)>; rel="prev""#])
            case 3: return ([Self.referrer(3), Self.referrer(4)], [#"<?page=2>; rel="prev""#])
            default: return nil
            }
        }
        let referrers = try await rig.session.result("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(referrers.arrayValue?.compactMap { $0["annotations"]?["n"]?.stringValue } == ["0", "1", "2", "3", "4"])
        let first = Digest.of(Array("referrer 0".utf8), algorithm: .sha256)
        #expect(referrers.arrayValue?.first?["ref"]?.stringValue == "\(rig.registry.host)/app@\(first)")
        #expect(referrersRequests(rig) == [listing, "\(listing)?page=2", "\(listing)?page=3"])
        try await rig.expectStillServing()
        await rig.close()
    }

    /// The listing's credentials would go with the request: a page
    /// anywhere else is refused before it is asked for.
    @Test func aPageOnAnotherOriginIsNeverAskedFor() async throws {
        let rig = try Rig()
        let elsewhere = try HostileRegistry()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        let link = #"<http://\#(elsewhere.host)/v2/app/referrers/\#(image)?page=2>; rel="next""#
        Self.serve(rig) { number in number == 1 ? ([Self.referrer(0)], [link]) : ([Self.referrer(1)], []) }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "invalid_page_link", "\(answer.jsonText)")
        #expect(answer.errorCode == -32006)
        #expect(elsewhere.requests.isEmpty)
        try await rig.expectStillServing()
        elsewhere.stop()
        await rig.close()
    }

    /// A page that does not come is an error, never the pages before it.
    @Test(arguments: [503, 404, 401, 429])
    func aLaterPageThatFailsFailsTheCall(status: Int) async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        Self.serve(
            rig, page: { number in number == 1 ? ([Self.referrer(0)], ["<?page=2>; rel=next"]) : nil },
            otherwise: { _ in HostileRegistry.registryError(status, "UNAVAILABLE") })
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer["result"] == nil, "\(answer.jsonText)")
        #expect(answer.errorReason != nil, "\(answer.jsonText)")
        try await rig.expectStillServing()
        await rig.close()
    }

    @Test func aLaterPageOfAnotherMediaTypeIsRefused() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        Self.serve(
            rig, page: { number in number == 1 ? ([Self.referrer(0)], ["<?page=2>; rel=next"]) : nil },
            otherwise: { _ in
                .response(status: 200, headers: [("Content-Type", "application/json")], body: Self.index([]))
            })
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "unexpected_media_type", "\(answer.jsonText)")
        await rig.close()
    }

    /// A first page that is not an OCI index is one the original falls
    /// back from (to the referrers tag), where the spec does not: an error
    /// of its own reason, never `unexpected_media_type`, which a policy may
    /// let be undefined (it was).
    @Test func aFirstPageOfAnotherMediaTypeIsReferrersUnsupported() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        rig.registry.script { request in
            guard request.path.contains("/referrers/") else { return nil }
            return .response(status: 200, headers: [("Content-Type", "application/json")], body: Self.index([]))
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "referrers_unsupported", "\(answer.jsonText)")
        #expect(answer.errorCode == -32004)
        await rig.close()
    }

    @Test func aLinkBackToAPageAlreadyReadIsRefused() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        Self.serve(rig) { number in
            number == 1 ? ([Self.referrer(0)], ["<?page=2>; rel=next"]) : ([Self.referrer(1)], ["<?page=2>; rel=next"])
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "invalid_page_link", "\(answer.jsonText)")
        #expect(referrersRequests(rig).count == 2)
        await rig.close()
    }

    @Test func aListingWithoutEndStopsAtThePageLimit() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        Self.serve(rig) { number in ([Self.referrer(number)], ["<?page=\(number + 1)>; rel=next"]) }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "too_many_pages", "\(answer.jsonText)")
        #expect(answer.errorCode == -32005)
        #expect(referrersRequests(rig).count == RegistryClient.maxReferrersPages)
        try await rig.expectStillServing()
        await rig.close()
    }

    /// The API's answer must be an index with its list: one without is a
    /// failure, not "none" (on any page).
    @Test(arguments: [#"{}"#, #"{"manifests":{}}"#, #"{"manifests":null}"#, #"{"Manifests":[]}"#, "page 2"])
    func anAnswerOfTheAPIWithoutItsListIsAnError(body: String) async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        let header = [("Content-Type", "application/vnd.oci.image.index.v1+json")]
        rig.registry.script { request in
            guard request.path.contains("/referrers/") else { return nil }
            if body != "page 2" { return .response(status: 200, headers: header, body: Array(body.utf8)) }
            return request.query["page"] == nil
                ? .response(status: 200, headers: header + [("Link", "<?page=2>; rel=next")], body: Self.index([]))
                : .response(status: 200, headers: header, body: Array("{}".utf8))
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        // Go reads "Manifests" as the list (the original answers): refused
        // as ambiguous, never as invalid, which a policy may take as absence.
        let expected = body.contains("Manifests") ? "ambiguous_manifest" : "invalid_manifest"
        #expect(answer.errorReason == expected, "\(answer.jsonText)")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// Where the registry has no API, the spec reads a referrers tag that
    /// is not an index with a list as no referrers.
    @Test func aReferrersTagWithoutAListIsNoReferrers() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        rig.registry.manifest(
            "app", tag: "sha256-\(image.hex)", mediaType: "application/vnd.oci.image.index.v1+json",
            Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#.utf8))
        #expect(try await rig.session.result("ec.oci.image_referrers", [rig.ref("app", image)]) == [])
        await rig.close()
    }

    /// Each page comes within the request timeout; the listing does not.
    @Test func aListingSlowerInAllThanTheRequestTimeoutStops() async throws {
        let rig = try Rig(["--request-timeout", "1s"])
        let image = rig.registry.image("app", tag: "v1", layers: [])
        rig.registry.script { request in
            guard request.path.contains("/referrers/") else { return nil }
            let number = request.query["page"].flatMap { Int($0) } ?? 1
            // About 0.4 s a page: each within the timeout.
            let body = Self.index([Self.referrer(number)])
            return .drip(
                status: 200,
                headers: [
                    ("Content-Type", "application/vnd.oci.image.index.v1+json"),
                    ("Link", "<?page=\(number + 1)>; rel=next"),
                ], body: body, interval: 0.4 / Double(body.count))
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "timeout", "\(answer.jsonText)")
        #expect((1...6).contains(referrersRequests(rig).count), "\(referrersRequests(rig).count)")
        try await rig.expectStillServing()
        await rig.close()
    }

    /// Each page is under the limit of one index; together they are over it.
    @Test func pagesOverTheIndexLimitTogetherAreRefused() async throws {
        let rig = try Rig()
        let image = rig.registry.image("app", tag: "v1", layers: [])
        let pageBytes = RegistryClient.maxManifestBytes / 3
        Self.serve(rig) { number in
            ([Self.referrer(number, padding: pageBytes)], number < 8 ? ["<?page=\(number + 1)>; rel=next"] : [])
        }
        let answer = try await rig.session.call("ec.oci.image_referrers", [rig.ref("app", image)])
        #expect(answer.errorReason == "manifest_too_large", "\(answer.jsonText)")
        // The third page takes the listing past the limit.
        #expect(referrersRequests(rig).count == 3)
        try await rig.expectStillServing()
        await rig.close()
    }
}
