import Reasons
import FoundationEssentials
import Glibc
import JSON
import Memory

/// The indexes listing the manifests that refer to a digest, as their
/// bytes came: the pages of a Referrers API listing in order (not
/// content-addressed, so no digest), or the one index of the referrers
/// tag (verified as any manifest).
public struct FetchedReferrers: Sendable {
    /// One index of the listing.
    public struct Page: Sendable {
        public let bytes: [UInt8]
        /// What the bytes hold of the memory budget, as a manifest's
        /// (`FetchedManifest.charge`).
        package let charge: MemoryShare?

        package init(bytes: [UInt8], charge: MemoryShare? = nil) {
            self.bytes = bytes
            self.charge = charge
        }
    }

    /// At least one; the referrers are the `manifests` of each, in order.
    public let pages: [Page]
    /// Whether the listing came from the Referrers API, whose every page
    /// must hold a `manifests` array (the spec's "image index containing a
    /// list of descriptors"), not from the referrers tag, where an index
    /// that lists none means no referrers (as the spec says).
    public let fromTheAPI: Bool

    package init(pages: [Page], fromTheAPI: Bool) {
        self.pages = pages
        self.fromTheAPI = fromTheAPI
    }

    /// The bytes of every page together.
    public var byteCount: Int { pages.reduce(0) { $0 + $1.bytes.count } }
}

extension RegistryClient {
    /// The most pages of one referrers listing that are read; a listing
    /// that names more is refused (`too_many_pages`).
    public static let maxReferrersPages = 64
    /// The longest query a next page's link may carry.
    package static let maxPageQueryBytes = 4096

    /// The indexes listing the manifests that refer to `reference`'s
    /// digest, as their bytes came (their `manifests` are the referrers),
    /// or nil when the registry has none.
    ///
    /// Uses the OCI Referrers API (`GET /v2/<name>/referrers/<digest>`),
    /// following the pages its `Link` headers name (`rel="next"`): each is
    /// asked for with the same credentials, so it must be the same listing
    /// on the same origin (the same URL with another query); at most
    /// `maxReferrersPages` pages, and `maxManifestBytes` for all of them
    /// together; no page is asked for once the listing has taken the
    /// transport's `requestTimeout`. When the registry does not support the API (404 on that
    /// endpoint), falls back to the referrers tag schema (`<repo>:sha256-<hex>`
    /// holding an index). Only the registry's 404 on the fallback tag means
    /// none: any other answer, and any page that cannot be read, is an
    /// error, never "no signatures" or a listing cut short (fail closed).
    /// The bytes carry their charge of the memory budget, as a manifest's do.
    public func fetchReferrers(_ reference: ImageReference) async throws(RegistryError) -> FetchedReferrers? {
        guard let digest = reference.digest else {
            throw RegistryError(
                .invalidReference, reason: .digestRequired, message: "\(reference) does not name a digest")
        }
        // At the reference's location (registries.conf may move it); its
        // mirrors are not asked.
        let location = try configuration.routes.route(reference).primary
        let url = try url(location, "referrers/\(digest)")
        let response = try await send(
            "GET", url, for: location, accept: ManifestMediaType.ociIndex, kind: .referrers)
        if response.status == 200 {
            return try await referrersPages(from: response, listing: url, of: location)
        }
        guard response.status == 404 else {
            var error = Self.error(for: response, notFoundReason: .manifestUnknown, what: "referrers of \(reference)")
            if response.status == 400 || response.status == 406 {
                error.reason = .referrersUnsupported
                error.message += Self.originalFallsBack
            }
            throw error
        }
        let fallback = reference.tagged("\(digest.algorithm.rawValue)-\(digest.hex)")
        do {
            let index = try await fetchManifest(fallback)
            return FetchedReferrers(
                pages: [FetchedReferrers.Page(bytes: index.bytes, charge: index.charge)], fromTheAPI: false)
        } catch  where error.kind == .notFound {
            return nil
        }
    }

    /// What a Referrers API answer the spec does not fall back from, and
    /// the original does, is told with (`referrers_unsupported`).
    static let originalFallsBack =
        " (only a 404 falls back to the referrers tag; go-containerregistry falls back from this too)"

    /// The first page of the listing at `listing` (`first`, a 200), and
    /// every page after it that the `Link` headers name.
    private func referrersPages(
        from first: HTTPResponse, listing: String, of reference: ImageReference
    ) async throws(RegistryError) -> FetchedReferrers {
        var pages: [FetchedReferrers.Page] = []
        var total = 0
        var response = first
        var requested: Set<String> = [listing]
        // Each page is one request, bounded on its own; the listing is
        // bounded too, so that a registry slow on every page cannot hold
        // the call for 64 of them.
        let limit = min(configuration.transport.requestTimeout, 86_400)
        let deadline = ContinuousClock.now + .milliseconds(Int(limit * 1000))
        while true {
            let what =
                pages.isEmpty
                ? "the referrers of \(reference)" : "page \(pages.count + 1) of the referrers of \(reference)"
            guard response.mediaType == ManifestMediaType.ociIndex else {
                let message = "\(what) came as '\(response.mediaType)', not an OCI index"
                guard pages.isEmpty else {
                    throw RegistryError(.unsupported, reason: .unexpectedMediaType, message: message)
                }
                throw RegistryError(
                    .unavailable, reason: .referrersUnsupported, message: message + Self.originalFallsBack,
                    httpStatus: response.status)
            }
            total += response.body.count
            guard total <= Self.maxManifestBytes else {
                throw RegistryError(
                    .limitExceeded, reason: .manifestTooLarge,
                    message: "the referrers index of \(reference) is over \(Self.maxManifestBytes) bytes"
                        + (pages.isEmpty ? "" : " in its \(pages.count + 1) pages"))
            }
            pages.append(FetchedReferrers.Page(bytes: response.body, charge: response.bodyCharge))
            guard let next = try Self.nextPage(after: response, listing: listing, what: what) else {
                return FetchedReferrers(pages: pages, fromTheAPI: true)
            }
            guard pages.count < Self.maxReferrersPages else {
                throw RegistryError(
                    .limitExceeded, reason: .tooManyPages,
                    message: "the referrers of \(reference) have more than \(Self.maxReferrersPages) pages")
            }
            guard ContinuousClock.now < deadline else {
                throw RegistryError(
                    .unavailable, reason: .timeout,
                    message:
                        "the referrers of \(reference) took longer than \(limit) s in all (--request-timeout), after \(pages.count) pages"
                )
            }
            guard requested.insert(next).inserted else {
                throw RegistryError(
                    .unsupported, reason: .invalidPageLink,
                    message: "\(what) names a page already read as the next one (\(next))")
            }
            // No more of a page is read than the listing has room for.
            response = try await send(
                "GET", next, for: reference, accept: ManifestMediaType.ociIndex, kind: .referrers,
                bodyLimit: Self.maxManifestBytes - total)
            guard response.status == 200 else {
                throw Self.error(
                    for: response, notFoundReason: .manifestUnknown,
                    what: "page \(pages.count + 1) of the referrers of \(reference)")
            }
        }
    }

    /// The URL of the page after `response`, which came for `listing`, or
    /// nil when its `Link` header names none. The credentials for the
    /// listing go with the request, so the page must be the listing's own
    /// URL with another query: a link anywhere else, or one that cannot be
    /// read, is `invalid_page_link`.
    package static func nextPage(after response: HTTPResponse, listing: String, what: String) throws(RegistryError)
        -> String?
    {
        guard let header = response.header("link") else { return nil }
        func refuse(_ why: String) -> RegistryError {
            RegistryError(.unsupported, reason: .invalidPageLink, message: "the Link header of \(what) \(why)")
        }
        let target: String?
        do {
            target = try LinkHeader.nextTarget(in: header)
        } catch {
            throw refuse("cannot be read: \(error.message)")
        }
        guard let target else { return nil }
        // Only characters a URL holds unescaped (and `%` escapes, `?`
        // before a query), so that resolving it escapes nothing anew.
        guard target.utf8.count <= maxPageQueryBytes + listing.utf8.count,
            target.utf8.allSatisfy({ isURLSafe($0) || $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "?") }),
            let base = URL(string: listing), let resolved = URL(string: target, relativeTo: base)?.absoluteString
        else {
            throw refuse("names a next page that is not a URL")
        }
        let prefix = listing + "?"
        guard resolved.hasPrefix(prefix), resolved.utf8.count > prefix.utf8.count,
            resolved.utf8.count - prefix.utf8.count <= maxPageQueryBytes
        else {
            throw refuse("names a next page outside the listing (\(resolved.prefix(200)))")
        }
        return resolved
    }
}
