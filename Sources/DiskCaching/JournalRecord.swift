import CZlib
import Registry

/// One record of a repository's journal, the file the disk cache appends
/// what it learns of one repository to: a manifest it holds (with its
/// bytes), a blob it holds, or what a tag named when fetched.
///
/// On disk a record is a header line, its payload and a newline:
///
///     <kind> <payload length> <CRC-32 of the payload, 8 hex digits>\n<payload>\n
///
/// - `m`: `<digest>\n<media type>\n<manifest bytes>`
/// - `b`: `<digest>`
/// - `t`: `<digest> <fetched at, Unix seconds>\n<tag reference>`
///
/// A record is written by one `write` to a file opened for appending, so
/// records of processes appending at once never interleave; a record is
/// believed only whole, with its checksum matching and its fields well
/// formed (a manifest's bytes are hashed against its digest when read).
package enum JournalRecord: Equatable, Sendable {
    /// A manifest the repository holds; its bytes are `body` in the file.
    case manifest(digest: Digest, mediaType: String, body: Range<Int>)
    /// A blob the repository holds.
    case blob(Digest)
    /// What `reference` named when fetched at `fetchedAt`.
    case tag(reference: String, digest: Digest, fetchedAt: Double)

    /// The longest header line: kind, length and checksum.
    static let maxHeaderBytes = 32
    /// The largest payload: a manifest at its limit, with its digest and media type.
    static let maxPayloadBytes = RegistryClient.maxManifestBytes + 1024

    // MARK: - Writing

    /// A manifest record.
    static func manifestBytes(_ manifest: FetchedManifest) -> [UInt8] {
        var payload = Array("\(manifest.digest)\n\(manifest.mediaType)\n".utf8)
        payload.append(contentsOf: manifest.bytes)
        return encode(kind: "m", payload)
    }

    /// A blob record.
    static func blobBytes(_ digest: Digest) -> [UInt8] {
        encode(kind: "b", Array(digest.description.utf8))
    }

    /// A tag record.
    static func tagBytes(_ reference: String, _ digest: Digest, fetchedAt: Double) -> [UInt8] {
        encode(kind: "t", Array("\(digest) \(fetchedAt)\n\(reference)".utf8))
    }

    private static func encode(kind: Character, _ payload: [UInt8]) -> [UInt8] {
        var record = Array("\(kind) \(payload.count) \(hex8(checksum(payload[...])))\n".utf8)
        record.reserveCapacity(record.count + payload.count + 1)
        record.append(contentsOf: payload)
        record.append(0x0A)
        return record
    }

    // MARK: - Reading

    /// What reading a journal's bytes found.
    package struct Scan: Equatable {
        /// The whole records, with offsets in the file.
        package var records: [JournalRecord] = []
        /// Bytes read as whole records; what follows is a record still
        /// being written (or nothing).
        package var consumed = 0
        /// A whole record that is not one the cache writes: the journal is
        /// damaged from there on.
        package var damaged = false
    }

    /// The records in `bytes`, which start at `offset` in the file.
    package static func scan(_ bytes: ArraySlice<UInt8>, offset: Int) -> Scan {
        var scan = Scan()
        var start = bytes.startIndex
        while start < bytes.endIndex {
            switch next(bytes, at: start, fileOffset: offset + (start - bytes.startIndex)) {
            case .incomplete:
                return scan
            case .damaged:
                scan.damaged = true
                return scan
            case .record(let record, let end):
                scan.records.append(record)
                start = end
                scan.consumed = end - bytes.startIndex
            }
        }
        return scan
    }

    private enum Step {
        case record(JournalRecord, end: Int)
        case incomplete
        case damaged
    }

    private static func next(_ bytes: ArraySlice<UInt8>, at start: Int, fileOffset: Int) -> Step {
        let headerLimit = min(bytes.endIndex, start + maxHeaderBytes)
        guard let newline = bytes[start..<headerLimit].firstIndex(of: 0x0A) else {
            return headerLimit == bytes.endIndex && headerLimit - start < maxHeaderBytes ? .incomplete : .damaged
        }
        let fields = bytes[start..<newline].split(separator: 0x20, omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].count == 1, fields[2].count == 8,
            let length = decimal(fields[1]), length <= maxPayloadBytes,
            let expected = UInt32(String(decoding: fields[2], as: UTF8.self), radix: 16)
        else { return .damaged }
        let payloadStart = newline + 1
        // Length checked against what is left before any sum is formed.
        guard bytes.endIndex - payloadStart > length else { return .incomplete }
        let payloadEnd = payloadStart + length
        guard bytes[payloadEnd] == 0x0A, checksum(bytes[payloadStart..<payloadEnd]) == expected else {
            return .damaged
        }
        let payload = bytes[payloadStart..<payloadEnd]
        let record: JournalRecord?
        switch fields[0].first {
        case UInt8(ascii: "m"): record = manifestRecord(payload, fileOffset: fileOffset + (payloadStart - start))
        case UInt8(ascii: "b"): record = digest(payload).map { .blob($0) }
        case UInt8(ascii: "t"): record = tagRecord(payload)
        default: record = nil
        }
        guard let record else { return .damaged }
        return .record(record, end: payloadEnd + 1)
    }

    /// `<digest>\n<media type>\n<bytes>`, the body's range in the file.
    private static func manifestRecord(_ payload: ArraySlice<UInt8>, fileOffset: Int) -> JournalRecord? {
        guard let first = payload.firstIndex(of: 0x0A),
            let second = payload[(first + 1)...].firstIndex(of: 0x0A),
            let digest = digest(payload[..<first])
        else { return nil }
        let mediaType = payload[(first + 1)..<second]
        guard DiskCache.isMediaType(Substring(decoding: mediaType, as: UTF8.self)) else { return nil }
        let bodyStart = fileOffset + (second + 1 - payload.startIndex)
        let bodyLength = payload.endIndex - (second + 1)
        guard bodyLength <= RegistryClient.maxManifestBytes else { return nil }
        return .manifest(
            digest: digest, mediaType: String(decoding: mediaType, as: UTF8.self),
            body: bodyStart..<(bodyStart + bodyLength))
    }

    /// `<digest> <fetched at>\n<tag reference>`.
    private static func tagRecord(_ payload: ArraySlice<UInt8>) -> JournalRecord? {
        guard let newline = payload.firstIndex(of: 0x0A) else { return nil }
        let fields = payload[..<newline].split(separator: 0x20, omittingEmptySubsequences: false)
        let reference = payload[(newline + 1)...]
        guard fields.count == 2, let digest = digest(fields[0]),
            let fetchedAt = Double(String(decoding: fields[1], as: UTF8.self)), fetchedAt.isFinite,
            !reference.isEmpty, !reference.contains(0x0A)
        else { return nil }
        return .tag(reference: String(decoding: reference, as: UTF8.self), digest: digest, fetchedAt: fetchedAt)
    }

    private static func digest(_ bytes: ArraySlice<UInt8>) -> Digest? {
        bytes.count <= 200 ? Digest(String(decoding: bytes, as: UTF8.self)) : nil
    }

    /// A length of at most 9 decimal digits (no sign, no spaces).
    private static func decimal(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            UInt32(truncatingIfNeeded: crc32(0, buffer.baseAddress, uInt(buffer.count)))
        }
    }

    private static func hex8(_ value: UInt32) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 8 - text.count) + text
    }
}
