import Reasons
import FoundationEssentials
import Glibc
import JSON

extension RegistryClient {
    /// The descriptors of the manifests that refer to `reference`'s digest.
    ///
    /// Uses the OCI Referrers API (`GET /v2/<name>/referrers/<digest>`); when
    /// the registry does not support it (404 on that endpoint), falls back to
    /// the referrers tag schema (`<repo>:sha256-<hex>` holding an index).
    /// Only the registry's 404 on the fallback tag makes an empty list: any
    /// other answer is an error, never "no signatures" (fail closed).
    public func fetchReferrers(_ reference: ImageReference) async throws(RegistryError) -> [JSONValue] {
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
            return try Self.manifests(inIndex: response.body, what: "referrers of \(reference)")
        }
        guard response.status == 404 else {
            throw Self.error(for: response, notFoundReason: .manifestUnknown, what: "referrers of \(reference)")
        }
        let fallback = reference.tagged("\(digest.algorithm.rawValue)-\(digest.hex)")
        do {
            let index = try await fetchManifest(fallback)
            return try Self.manifests(inIndex: index.bytes, what: "referrers tag \(fallback)")
        } catch  where error.kind == .notFound {
            return []
        }
    }

    /// The `manifests` array of an index document.
    static func manifests(inIndex bytes: [UInt8], what: String) throws(RegistryError) -> [JSONValue] {
        guard let document = try? JSONParser.parse(bytes), case .object = document else {
            throw RegistryError(.unsupported, reason: .notJSON, message: "\(what) is not a JSON index")
        }
        return document["manifests"]?.arrayValue ?? []
    }
}
