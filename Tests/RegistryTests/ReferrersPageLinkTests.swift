import Reasons
import Testing
@testable import Registry

/// Reading a `Link` header for the next page of a referrers listing.
@Suite struct LinkHeaderReading {
    @Test(arguments: [
        (#"</v2/a/referrers/sha256:1?n=2>; rel="next""#, "/v2/a/referrers/sha256:1?n=2"),
        (#"<?n=2>; rel=next"#, "?n=2"),
        (#"<p>; rel="prev", <n>; rel="next""#, "n"),
        (#"<p>; rel="prev",<n>;rel="next""#, "n"),
        (#"<n>; REL="Next""#, "n"),
        (#"<n>; rel="last next""#, "n"),
        (#"<n>; title="a, b; rel=prev"; rel="next""#, "n"),
        (#"<n>; title="say \"next\""; rel=next"#, "n"),
        (#", <n>; rel="next", "#, "n"),
        (#"<n>; rel="next", <n>; rel="next""#, "n"),
        (#"<n>; anchor; rel="next""#, "n"),
    ])
    func theNextPageIsTheLinkWhoseRelationIsNext(header: String, target: String) throws {
        #expect(try LinkHeader.nextTarget(in: header) == target)
    }

    @Test(arguments: [
        "", " ", #"<p>; rel="prev""#, #"<p>; rel="nextpage""#, #"<p>; title="rel=next""#, "<p>",
        #"<p>; rel="prev"; rel="next""#,
    ])
    func aHeaderNamingNoNextPageHasNone(header: String) throws {
        #expect(try LinkHeader.nextTarget(in: header) == nil)
    }

    /// A header that cannot be read could hide a page: an error, never "no next page".
    @Test(arguments: [
        #"/v2/a?n=2; rel="next""#, #"<n; rel="next""#, #"<n>; rel="next"#, #"<n> x; rel="next""#,
        #"<n>; ="next""#, #"<a>; rel="next", <b>; rel="next""#, #"<n>; rel="next" junk"#,
    ])
    func aHeaderThatCannotBeReadIsAnError(header: String) {
        #expect(throws: LinkHeader.Malformed.self) { try LinkHeader.nextTarget(in: header) }
    }
}

/// Which next pages a referrers listing may name: its own URL with another
/// query, for the listing's credentials go with the request.
@Suite struct ReferrersNextPage {
    private let listing = "http://127.0.0.1:5000/v2/team/app/referrers/sha256:abc"

    private func next(_ link: String) throws(RegistryError) -> String? {
        let response = HTTPResponse(status: 200, headers: ["Link": link], body: [])
        return try RegistryClient.nextPage(after: response, listing: listing, what: "the referrers")
    }

    @Test(arguments: [
        (#"</v2/team/app/referrers/sha256:abc?n=10&last=sha256:f>; rel="next""#, "?n=10&last=sha256:f"),
        (#"<?n=10&last=x%2Fy>; rel="next""#, "?n=10&last=x%2Fy"),
        (#"<http://127.0.0.1:5000/v2/team/app/referrers/sha256:abc?page=2>; rel="next""#, "?page=2"),
        (#"<//127.0.0.1:5000/v2/team/app/referrers/sha256:abc?page=2>; rel="next""#, "?page=2"),
    ])
    func aPageOfTheSameListingIsFollowed(link: String, query: String) throws {
        #expect(try next(link) == listing + query)
    }

    @Test func aResponseWithoutALinkHasNoNextPage() throws {
        let response = HTTPResponse(status: 200, headers: [:], body: [])
        #expect(try RegistryClient.nextPage(after: response, listing: listing, what: "the referrers") == nil)
    }

    @Test(arguments: [
        #"<http://evil.example/v2/team/app/referrers/sha256:abc?n=2>; rel="next""#,
        #"<//evil.example/v2/team/app/referrers/sha256:abc?n=2>; rel="next""#,
        #"<http://127.0.0.1:5001/v2/team/app/referrers/sha256:abc?n=2>; rel="next""#,
        #"<https://127.0.0.1:5000/v2/team/app/referrers/sha256:abc?n=2>; rel="next""#,
        #"<http://127.0.0.1:5000@evil.example/v2/team/app/referrers/sha256:abc?n=2>; rel="next""#,
        #"</v2/team/app/blobs/sha256:abc?n=2>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abc/../../blobs/sha256:abc?n=2>; rel="next""#,
        #"</v2/team/other/referrers/sha256:abc?n=2>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abcd?n=2>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abc>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abc?>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abc#x?n=2>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abc?n=2 3>; rel="next""#,
        #"</v2/team/app/referrers/sha256:abc?n="2">; rel="next""#,
        #"<n>; rel="next"; <"#,
    ])
    func aLinkOutsideTheListingIsRefused(link: String) {
        #expect {
            try next(link)
        } throws: { error in
            (error as? RegistryError)?.reason == .invalidPageLink
        }
    }

    @Test func aQueryOverTheLimitIsRefused() throws {
        let longest = String(repeating: "q", count: RegistryClient.maxPageQueryBytes)
        #expect(try next("<?\(longest)>; rel=next") == listing + "?" + longest)
        #expect {
            try next("<?\(longest)q>; rel=next")
        } throws: { error in
            (error as? RegistryError)?.reason == .invalidPageLink
        }
    }
}
