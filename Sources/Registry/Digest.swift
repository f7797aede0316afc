import COpenSSL

/// A content digest, `algorithm:hex`, as OCI descriptors and references
/// carry it. Only `sha256` and `sha512` are accepted.
public struct Digest: Sendable, Hashable, CustomStringConvertible {
    /// A supported digest algorithm.
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256, sha512

        /// Length of the lower-case hex encoding.
        public var hexLength: Int { self == .sha256 ? 64 : 128 }

        init?(name: UnsafeBufferPointer<UInt8>) {
            if name.elementsEqual("sha256".utf8) {
                self = .sha256
            } else if name.elementsEqual("sha512".utf8) {
                self = .sha512
            } else {
                return nil
            }
        }
    }

    public let algorithm: Algorithm
    /// Lower-case hex.
    public let hex: String

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; nil otherwise
    /// (upper-case hex is refused, as the OCI grammar says).
    public init?(_ text: String) {
        // On the contiguous bytes: digests are parsed for every manifest.
        var text = text
        let parsed = text.withUTF8 { utf8 -> (Algorithm, String)? in
            guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
                let algorithm = Algorithm(name: UnsafeBufferPointer(rebasing: utf8[..<colon]))
            else { return nil }
            let hex = UnsafeBufferPointer(rebasing: utf8[(colon + 1)...])
            guard hex.count == algorithm.hexLength,
                hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
            else { return nil }
            return (algorithm, String(decoding: hex, as: UTF8.self))
        }
        guard let (algorithm, hex) = parsed else { return nil }
        self.algorithm = algorithm
        self.hex = hex
        description = text
    }

    public init(algorithm: Algorithm, hex: String) {
        self.algorithm = algorithm
        self.hex = hex
        description = "\(algorithm.rawValue):\(hex)"
    }

    /// `algorithm:hex`, made once: digests are used as text (keys, URLs) often.
    public let description: String

    public static func == (lhs: Digest, rhs: Digest) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    /// The digest of `bytes`.
    public static func of<Bytes: Collection<UInt8>>(_ bytes: Bytes, algorithm: Algorithm = .sha256) -> Digest {
        let hasher = DigestHasher(algorithm)
        hasher.update(bytes)
        return hasher.finalize()
    }
}

/// Computes a digest incrementally (while bytes stream in) with OpenSSL's
/// EVP interface.
public final class DigestHasher {
    public let algorithm: Digest.Algorithm
    private let context: OpaquePointer

    /// The implementations, fetched from OpenSSL's provider once: without
    /// this every digest fetched one by name again, which cost more than
    /// hashing a manifest. Shared read-only by every thread (OpenSSL allows
    /// it).
    private nonisolated(unsafe) static let sha256 = EVP_MD_fetch(nil, "SHA256", nil) ?? EVP_sha256()
    private nonisolated(unsafe) static let sha512 = EVP_MD_fetch(nil, "SHA512", nil) ?? EVP_sha512()

    public init(_ algorithm: Digest.Algorithm) {
        self.algorithm = algorithm
        // EVP_MD_CTX_new only fails when out of memory.
        context = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(context, algorithm == .sha256 ? Self.sha256 : Self.sha512, nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    public func update<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest of everything passed to `update`. Call once.
    public func finalize() -> Digest {
        let hex = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(EVP_MAX_MD_SIZE)) { output in
            var length: UInt32 = 0
            EVP_DigestFinal_ex(context, output.baseAddress, &length)
            let digits = Self.hexDigits
            return String(unsafeUninitializedCapacity: Int(length) * 2) { hex in
                for index in 0..<Int(length) {
                    hex[2 * index] = digits[Int(output[index] >> 4)]
                    hex[2 * index + 1] = digits[Int(output[index] & 0xF)]
                }
                return Int(length) * 2
            }
        }
        return Digest(algorithm: algorithm, hex: hex)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
