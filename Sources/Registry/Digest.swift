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
            // `sha` and three digits, compared as bytes.
            guard name.count == 6, name[0] == 0x73, name[1] == 0x68, name[2] == 0x61 else { return nil }
            switch (name[3], name[4], name[5]) {
            case (0x32, 0x35, 0x36): self = .sha256
            case (0x35, 0x31, 0x32): self = .sha512
            default: return nil
            }
        }
    }

    public let algorithm: Algorithm

    /// Lower-case hex, made when asked (digests are used whole far more
    /// often: one string a digest, not two).
    public var hex: String {
        String(decoding: description.utf8.dropFirst(algorithm.rawValue.utf8.count + 1), as: UTF8.self)
    }

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; nil otherwise
    /// (upper-case hex is refused, as the OCI grammar says).
    public init?(_ text: String) {
        // On the contiguous bytes: digests are parsed for every manifest.
        var text = text
        guard let parsed = text.withUTF8({ Self.algorithm(of: $0) }) else { return nil }
        algorithm = parsed
        description = text
    }

    /// Parses the UTF-8 bytes of `sha256:<64 hex>` or `sha512:<128 hex>`,
    /// making the text only once they are found to be one.
    package init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard let parsed = Self.algorithm(of: utf8) else { return nil }
        algorithm = parsed
        description = String(decoding: utf8, as: UTF8.self)
    }

    /// Whether the UTF-8 bytes are `sha256:<64 hex>` or `sha512:<128 hex>`
    /// (no text made).
    package static func isDigest(utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        algorithm(of: utf8) != nil
    }

    /// The algorithm of the digest `utf8` is, nil when it is not one.
    private static func algorithm(of utf8: UnsafeBufferPointer<UInt8>) -> Algorithm? {
        guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
            let algorithm = Algorithm(name: UnsafeBufferPointer(rebasing: utf8[..<colon]))
        else { return nil }
        let hex = UnsafeBufferPointer(rebasing: utf8[(colon + 1)...])
        guard hex.count == algorithm.hexLength, isLowerHex(hex) else { return nil }
        return algorithm
    }

    /// Whether every byte is `0-9` or `a-f`, eight at a time (a digest is
    /// checked each time one is read, thousands of times per journal).
    private static func isLowerHex(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits = ones &* 0x80
        /// The high bit of each byte of `word` (all below 0x80) set when the
        /// byte is in `low...high`.
        func inRange(_ word: UInt64, _ low: UInt64, _ high: UInt64) -> UInt64 {
            (word &+ ones &* (0x80 - low)) & ~(word &+ ones &* (0x7F - high)) & highBits
        }
        var place = 0
        while place + 8 <= bytes.count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + place).loadUnaligned(as: UInt64.self))
            guard word & highBits == 0,
                inRange(word, 0x30, 0x39) | inRange(word, 0x61, 0x66) == highBits
            else { return false }
            place += 8
        }
        while place < bytes.count {
            let byte = base[place]
            if byte &- 0x30 > 9 && byte &- 0x61 > 5 { return false }
            place += 1
        }
        return true
    }

    /// The lower-case hex digit of `nibble` (0-15), as digests are written.
    package static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
    }

    public init(algorithm: Algorithm, hex: String) {
        self.init(algorithm: algorithm, finalizedText: algorithm.rawValue + ":" + hex)
    }

    /// `finalizedText` is `algorithm:hex` in lower case (the caller made it so).
    fileprivate init(algorithm: Algorithm, finalizedText: String) {
        self.algorithm = algorithm
        description = finalizedText
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
/// SHA-256 and SHA-512.
///
/// These are the one-algorithm functions of `<openssl/sha.h>`, not EVP:
/// the first EVP digest of a process initialises OpenSSL's provider and
/// builds its algorithm name tables (~3 million instructions, a tenth of a
/// process that answers one manifest), and every EVP digest allocates a
/// context. Both run the same assembly for the hashing itself.
public final class DigestHasher {
    public let algorithm: Digest.Algorithm
    private let state: State

    private enum State {
        case sha256(UnsafeMutablePointer<SHA256_CTX>)
        case sha512(UnsafeMutablePointer<SHA512_CTX>)
    }

    public init(_ algorithm: Digest.Algorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256:
            let context = UnsafeMutablePointer<SHA256_CTX>.allocate(capacity: 1)
            SHA256_Init(context)
            state = .sha256(context)
        case .sha512:
            let context = UnsafeMutablePointer<SHA512_CTX>.allocate(capacity: 1)
            SHA512_Init(context)
            state = .sha512(context)
        }
    }

    deinit {
        switch state {
        case .sha256(let context): context.deallocate()
        case .sha512(let context): context.deallocate()
        }
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        switch state {
        case .sha256(let context): SHA256_Update(context, base, bytes.count)
        case .sha512(let context): SHA512_Update(context, base, bytes.count)
        }
    }

    public func update<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest of everything passed to `update`. Call once.
    public func finalize() -> Digest {
        let length = algorithm.hexLength / 2
        let name = algorithm.rawValue.utf8
        let text = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(SHA512_DIGEST_LENGTH)) { output in
            switch state {
            case .sha256(let context): SHA256_Final(output.baseAddress, context)
            case .sha512(let context): SHA512_Final(output.baseAddress, context)
            }
            // `algorithm:hex` in one string.
            return String(unsafeUninitializedCapacity: name.count + 1 + length * 2) { text in
                var at = 0
                for byte in name {
                    text[at] = byte
                    at += 1
                }
                text[at] = UInt8(ascii: ":")
                at += 1
                // Written through the pointer: both buffers were sized above.
                let hex = text.baseAddress! + at
                for index in 0..<length {
                    let byte = output[index]
                    hex[2 * index] = Digest.hexDigit(byte >> 4)
                    hex[2 * index + 1] = Digest.hexDigit(byte & 0xF)
                }
                return at + length * 2
            }
        }
        return Digest(algorithm: algorithm, finalizedText: text)
    }
}
