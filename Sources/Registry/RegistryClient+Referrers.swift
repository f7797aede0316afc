import Reasons
import FoundationEssentials
import Glibc
import JSON
import Memory

/// An index listing the manifests that refer to a digest, as its bytes
/// came: from the Referrers API (not content-addressed, so no digest) or
/// from the referrers tag (verified as any manifest).
public struct FetchedReferrers: Sendable {
    public let bytes: [UInt8]
    /// What the bytes hold of the memory budget, as a manifest's
    /// (`FetchedManifest.charge`).
    package let charge: MemoryShare?

    package init(bytes: [UInt8], charge: MemoryShare? = nil) {
        self.bytes = bytes
        self.charge = charge
    }
}

extension RegistryClient {
    /// The index listing the manifests that refer to `reference`'s digest,
    /// as its bytes came (its `manifests` are the referrers), or nil when
    /// the registry has none.
    ///
    /// Uses the OCI Referrers API (`GET /v2/<name>/referrers/<digest>`); when
    /// the registry does not support it (404 on that endpoint), falls back to
    /// the referrers tag schema (`<repo>:sha256-<hex>` holding an index).
    /// Only the registry's 404 on the fallback tag means none: any other
    /// answer is an error, never "no signatures" (fail closed). The bytes
    /// carry their charge of the memory budget, as a manifest's do.
    public func fetchReferrers(_ reference: ImageReference) async throws(RegistryError) -> FetchedReferrers? {
        guard let digest = reference.digest else {
            throw RegistryError(
                .invalidReference, reason: .digestRequired, message: "\(reference) does not name a digest")
        }
        try refuseIfBlocked(reference)
        let url = try url(reference, "referrers/\(digest)")
        let response = try await send(
            "GET", url, for: reference, accept: ManifestMediaType.ociIndex, kind: .referrers)
        if response.status == 200 {
            guard response.mediaType == ManifestMediaType.ociIndex else {
                throw RegistryError(
                    .unsupported, reason: .unexpectedMediaType,
                    message: "the referrers of \(reference) came as '\(response.mediaType)', not an OCI index")
            }
            guard response.body.count <= Self.maxManifestBytes else {
                throw RegistryError(
                    .limitExceeded, reason: .manifestTooLarge,
                    message: "the referrers index of \(reference) is over \(Self.maxManifestBytes) bytes")
            }
            return FetchedReferrers(bytes: response.body, charge: response.bodyCharge)
        }
        guard response.status == 404 else {
            throw Self.error(for: response, notFoundReason: .manifestUnknown, what: "referrers of \(reference)")
        }
        let fallback = reference.tagged("\(digest.algorithm.rawValue)-\(digest.hex)")
        do {
            let index = try await fetchManifest(fallback)
            return FetchedReferrers(bytes: index.bytes, charge: index.charge)
        } catch  where error.kind == .notFound {
            return nil
        }
    }
}
