import Registry
import Testing

@testable import DiskCaching

/// The journal's record format: what is written reads back, and anything
/// cut short, altered or oversized is told apart.
@Suite struct JournalRecordTests {
    let manifest = FetchedManifest(bytes: Array(#"{"schemaVersion":2}"#.utf8), mediaType: ManifestMediaType.ociManifest)

    @Test func recordsReadBackWithTheirManifestBytesLocatedInTheFile() throws {
        let prefix = [UInt8](repeating: 0x41, count: 7)
        let bytes =
            prefix + JournalRecord.manifestBytes(manifest) + JournalRecord.blobBytes(manifest.digest)
            + JournalRecord.tagBytes("r.test/app:v1", manifest.digest, fetchedAt: 1_700_000_000.25)
        let scan = JournalRecord.scan(bytes[prefix.count...], offset: 100)
        #expect(!scan.damaged)
        #expect(scan.consumed == bytes.count - prefix.count)
        #expect(scan.records.count == 3)
        guard case .manifest(let digest, let mediaType, let body) = scan.records[0] else {
            Issue.record("not a manifest: \(scan.records[0])")
            return
        }
        #expect(digest == manifest.digest)
        #expect(mediaType == manifest.mediaType)
        // Offsets in the file: the slice starts at file offset 100.
        let start = body.lowerBound - 100 + prefix.count
        #expect(Array(bytes[start..<(start + body.count)]) == manifest.bytes)
        #expect(scan.records[1] == .blob(manifest.digest))
        #expect(
            scan.records[2] == .tag(reference: "r.test/app:v1", digest: manifest.digest, fetchedAt: 1_700_000_000.25))
    }

    @Test func recordsReadFromAppendedBytesAreTheOnesAppended() {
        var appending = JournalRecord.Appending()
        appending.blob(manifest.digest)
        appending.manifest(manifest)
        appending.tag("r.test/app:v1", manifest.digest, fetchedAt: 1_700_000_000.123_456)
        appending.manifest(FetchedManifest(bytes: [], mediaType: ManifestMediaType.dockerManifest))
        let scan = JournalRecord.scan(appending.bytes[...], offset: 0)
        #expect(!scan.damaged)
        #expect(scan.consumed == appending.bytes.count)
        #expect(scan.records == appending.records)
        #expect(appending.records.count == 4)
    }

    @Test func aTagsTimeIsReadBackAsTheValueTakenIn() {
        var generator = SystemRandomNumberGenerator()
        let edges: [Double] = [0, 0.0004, 0.0005, 0.9995, 9.9999, 10, 999.9995, 1_700_000_000, 4_102_444_800.999_9]
        let times = edges + (0..<5000).map { _ in Double.random(in: 0..<5e9, using: &generator) }
        for time in times {
            var appending = JournalRecord.Appending()
            appending.tag("r.test/app:v1", manifest.digest, fetchedAt: time)
            let scan = JournalRecord.scan(appending.bytes[...], offset: 0)
            #expect(scan.records == appending.records, "\(time)")
            guard case .tag(_, _, let kept) = appending.records.first else {
                Issue.record("no tag record")
                return
            }
            #expect(kept <= time && time - kept < 0.001 + time.ulp, "\(time)")
        }
    }

    @Test func aRecordCutAnywhereIsIncompleteNotDamaged() {
        let first = JournalRecord.blobBytes(manifest.digest)
        let second = JournalRecord.manifestBytes(manifest)
        let bytes = first + second
        for cut in first.count..<bytes.count {
            let scan = JournalRecord.scan(bytes[0..<cut], offset: 0)
            #expect(!scan.damaged, "cut at \(cut)")
            #expect(scan.records.count == 1)
            #expect(scan.consumed == first.count)
        }
    }

    @Test func anyAlteredByteIsDamage() {
        let record = JournalRecord.tagBytes("r.test/app:v1", manifest.digest, fetchedAt: 1)
        for index in record.indices {
            var altered = record
            altered[index] ^= 0x01
            let scan = JournalRecord.scan(altered[...], offset: 0)
            // A changed length may make it look unfinished; never a record.
            #expect(scan.records.isEmpty, "byte \(index)")
            #expect(scan.damaged || scan.consumed == 0)
        }
    }

    @Test func lengthsPastTheLimitOrMalformedAreDamage() {
        for header in [
            "m 999999999 00000000\n", "m 4196353 00000000\n", "t -1 00000000\n", "t 1 0000000\n", "x 1 00000000\n",
            "t 1  00000000\n", String(repeating: "t", count: 40),
        ] {
            let bytes = Array(header.utf8) + [UInt8](repeating: 0x20, count: 64)
            #expect(JournalRecord.scan(bytes[...], offset: 0).damaged, "\(header)")
        }
    }

    @Test func aRecordWithAGoodChecksumMustStillBeWellFormed() {
        for (kind, payload) in [
            ("t", "sha256:00 1\nr.test/app:v1"), ("t", "\(manifest.digest) nan\nr.test/app:v1"),
            ("t", "\(manifest.digest) 1\n"), ("b", "sha256:zz"),
            ("m", "\(manifest.digest)\nno media type\n{}"), ("m", "\(manifest.digest)"),
        ] {
            let body = Array(payload.utf8)
            let checksum = String(JournalRecord.checksum(body[...]), radix: 16)
            let header = "\(kind) \(body.count) \(String(repeating: "0", count: 8 - checksum.count) + checksum)\n"
            let bytes = Array(header.utf8) + body + [0x0A]
            #expect(JournalRecord.scan(bytes[...], offset: 0).damaged, "\(kind) \(payload)")
        }
    }
}
