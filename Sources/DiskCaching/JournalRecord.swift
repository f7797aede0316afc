import CZlib
import Glibc
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

    /// Records to append in one write, with what they say: the process
    /// appending them takes them in as they are, without reading its own
    /// bytes back (a manifest's body is located from the first byte).
    package struct Appending: Sendable {
        package private(set) var bytes: [UInt8] = []
        package private(set) var records: [JournalRecord] = []

        package init() {}

        package var isEmpty: Bool { bytes.isEmpty }

        /// A manifest record: `<digest>\n<media type>\n<manifest bytes>`.
        package mutating func manifest(_ manifest: FetchedManifest) {
            var fields = Fields()
            fields.append(manifest.digest.description)
            fields.append(0x0A)
            fields.append(manifest.mediaType)
            fields.append(0x0A)
            let bodyOffset = add(kind: UInt8(ascii: "m"), fields, body: manifest.bytes)
            records.append(
                .manifest(
                    digest: manifest.digest, mediaType: manifest.mediaType,
                    body: bodyOffset..<(bodyOffset + manifest.bytes.count)))
        }

        /// A blob record: `<digest>`.
        package mutating func blob(_ digest: Digest) {
            var fields = Fields()
            fields.append(digest.description)
            add(kind: UInt8(ascii: "b"), fields, body: [])
            records.append(.blob(digest))
        }

        /// A tag record: `<digest> <fetched at>\n<tag reference>`, the time
        /// kept to the millisecond (what is read back is what is taken in).
        package mutating func tag(_ reference: String, _ digest: Digest, fetchedAt: Double) {
            var fields = Fields()
            fields.append(digest.description)
            fields.append(0x20)
            let fetchedAt = fields.appendSeconds(fetchedAt)
            fields.append(0x0A)
            fields.append(reference)
            add(kind: UInt8(ascii: "t"), fields, body: [])
            records.append(.tag(reference: reference, digest: digest, fetchedAt: fetchedAt))
        }

        /// Appends `other`'s records after these.
        package mutating func append(contentsOf other: Appending) {
            let start = bytes.count
            bytes.append(contentsOf: other.bytes)
            records.append(contentsOf: other.records.map { $0.shifted(by: start) })
        }

        /// Appends `<kind> <length> <checksum>\n`, the payload (`fields`
        /// then `body`) and a newline; returns where `body` starts.
        @discardableResult
        private mutating func add(kind: UInt8, _ fields: Fields, body: [UInt8]) -> Int {
            let length = fields.bytes.count + body.count
            var crc = fields.bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            crc = body.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
            bytes.reserveCapacity(bytes.count + JournalRecord.maxHeaderBytes + length + 1)
            bytes.append(kind)
            bytes.append(0x20)
            Fields.appendDecimal(UInt64(length), to: &bytes)
            bytes.append(0x20)
            JournalRecord.appendHex8(UInt32(truncatingIfNeeded: crc), to: &bytes)
            bytes.append(0x0A)
            bytes.append(contentsOf: fields.bytes)
            let bodyOffset = bytes.count
            bytes.append(contentsOf: body)
            bytes.append(0x0A)
            return bodyOffset
        }
    }

    /// A record's fields before its body, made as bytes.
    private struct Fields {
        var bytes: [UInt8] = []

        init() { bytes.reserveCapacity(256) }

        mutating func append(_ byte: UInt8) { bytes.append(byte) }

        mutating func append(_ text: String) {
            var text = text
            text.withUTF8 { bytes.append(contentsOf: $0) }
        }

        /// Appends `seconds` to the millisecond below (`1700000000.123`: a
        /// time just taken is never read back as one to come); returns the
        /// value that text is read back as. Times out of any clock's range
        /// are written as Swift writes them.
        mutating func appendSeconds(_ seconds: Double) -> Double {
            guard seconds >= 0, seconds < 1e12 else {
                append("\(seconds)")
                return seconds
            }
            var millis = UInt64((seconds * 1000).rounded(.down))
            // The product is rounded too, and may have rounded up.
            if millis > 0 && Double(millis) / 1000 > seconds { millis -= 1 }
            Self.appendDecimal(millis / 1000, to: &bytes)
            bytes.append(UInt8(ascii: "."))
            let fraction = millis % 1000
            bytes.append(0x30 + UInt8(fraction / 100))
            bytes.append(0x30 + UInt8(fraction / 10 % 10))
            bytes.append(0x30 + UInt8(fraction % 10))
            return Double(millis) / 1000
        }

        /// Appends `value` in decimal digits.
        static func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
            var place: UInt64 = 1
            while value / place >= 10 { place *= 10 }
            repeat {
                bytes.append(0x30 + UInt8(value / place % 10))
                place /= 10
            } while place > 0
        }
    }

    /// A manifest record.
    static func manifestBytes(_ manifest: FetchedManifest) -> [UInt8] {
        var appending = Appending()
        appending.manifest(manifest)
        return appending.bytes
    }

    /// A blob record.
    static func blobBytes(_ digest: Digest) -> [UInt8] {
        var appending = Appending()
        appending.blob(digest)
        return appending.bytes
    }

    /// A tag record.
    static func tagBytes(_ reference: String, _ digest: Digest, fetchedAt: Double) -> [UInt8] {
        var appending = Appending()
        appending.tag(reference, digest, fetchedAt: fetchedAt)
        return appending.bytes
    }

    /// The record `offset` bytes further into the file.
    func shifted(by offset: Int) -> JournalRecord {
        guard case .manifest(let digest, let mediaType, let body) = self else { return self }
        return .manifest(
            digest: digest, mediaType: mediaType, body: (body.lowerBound + offset)..<(body.upperBound + offset))
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
        bytes.withUnsafeBufferPointer { scan($0[...], offset: offset) }
    }

    /// The records in `bytes`, which start at `offset` in the file.
    private static func scan(_ bytes: Bytes, offset: Int) -> Scan {
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

    /// A journal's bytes as they are read: a slice of the buffer read,
    /// indices counted from its start.
    private typealias Bytes = Slice<UnsafeBufferPointer<UInt8>>

    private enum Step {
        case record(JournalRecord, end: Int)
        case incomplete
        case damaged
    }

    private static func next(_ bytes: Bytes, at start: Int, fileOffset: Int) -> Step {
        let headerLimit = min(bytes.endIndex, start + maxHeaderBytes)
        guard let newline = find(0x0A, bytes[start..<headerLimit]) else {
            return headerLimit == bytes.endIndex && headerLimit - start < maxHeaderBytes ? .incomplete : .damaged
        }
        // `<kind> <length> <checksum>`: one byte, digits, 8 hex digits.
        let checksumStart = newline - 8
        guard checksumStart - start >= 4, bytes[start + 1] == 0x20, bytes[checksumStart - 1] == 0x20,
            let length = decimal(bytes[(start + 2)..<(checksumStart - 1)]), length <= maxPayloadBytes,
            let expected = hex32(bytes[checksumStart..<newline])
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
        switch bytes[start] {
        case UInt8(ascii: "m"): record = manifestRecord(payload, fileOffset: fileOffset + (payloadStart - start))
        case UInt8(ascii: "b"): record = digest(payload).map { .blob($0) }
        case UInt8(ascii: "t"): record = tagRecord(payload)
        default: record = nil
        }
        guard let record else { return .damaged }
        return .record(record, end: payloadEnd + 1)
    }

    /// `<digest>\n<media type>\n<bytes>`, the body's range in the file.
    private static func manifestRecord(_ payload: Bytes, fileOffset: Int) -> JournalRecord? {
        guard let first = find(0x0A, payload),
            let second = find(0x0A, payload[(first + 1)...]),
            let digest = digest(payload[..<first])
        else { return nil }
        let mediaType = payload[(first + 1)..<second]
        guard DiskCache.isMediaType(mediaType) else { return nil }
        let bodyStart = fileOffset + (second + 1 - payload.startIndex)
        let bodyLength = payload.endIndex - (second + 1)
        guard bodyLength <= RegistryClient.maxManifestBytes else { return nil }
        return .manifest(
            digest: digest, mediaType: String(decoding: mediaType, as: UTF8.self),
            body: bodyStart..<(bodyStart + bodyLength))
    }

    /// `<digest> <fetched at>\n<tag reference>`.
    private static func tagRecord(_ payload: Bytes) -> JournalRecord? {
        guard let newline = find(0x0A, payload),
            let space = find(0x20, payload[..<newline])
        else { return nil }
        let time = payload[(space + 1)..<newline]
        let reference = payload[(newline + 1)...]
        guard find(0x20, time) == nil, let digest = digest(payload[..<space]),
            let fetchedAt = Double(String(decoding: time, as: UTF8.self)), fetchedAt.isFinite,
            !reference.isEmpty, find(0x0A, reference) == nil
        else { return nil }
        return .tag(reference: String(decoding: reference, as: UTF8.self), digest: digest, fetchedAt: fetchedAt)
    }

    private static func digest(_ bytes: Bytes) -> Digest? {
        bytes.count <= 200 ? Digest(utf8: UnsafeBufferPointer(rebasing: bytes)) : nil
    }

    /// Where `byte` first comes in `bytes` (`memchr`: records are scanned
    /// for their separators, a journal of thousands at a time).
    private static func find(_ byte: UInt8, _ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty, let base = bytes.base.baseAddress,
            let found = memchr(base + bytes.startIndex, Int32(byte), bytes.count)
        else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(base)
    }

    /// A length of at most 9 decimal digits (no sign, no spaces).
    private static func decimal(_ bytes: Bytes) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    /// Eight hex digits (either case).
    private static func hex32(_ bytes: Bytes) -> UInt32? {
        guard bytes.count == 8 else { return nil }
        var value: UInt32 = 0
        for byte in bytes {
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x61...0x66: digit = byte - 0x57
            case 0x41...0x46: digit = byte - 0x37
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { checksum($0[...]) }
    }

    private static func checksum(_ bytes: Bytes) -> UInt32 {
        guard let base = bytes.base.baseAddress else { return UInt32(truncatingIfNeeded: crc32(0, nil, 0)) }
        return UInt32(truncatingIfNeeded: crc32(0, base + bytes.startIndex, uInt(bytes.count)))
    }

    /// Appends `value` in 8 lowercase hex digits.
    static func appendHex8(_ value: UInt32, to bytes: inout [UInt8]) {
        for place in 0..<8 {
            bytes.append(Digest.hexDigit(UInt8((value >> (28 - 4 * UInt32(place))) & 0xF)))
        }
    }
}
