import Reasons
import Archive
import Testing
import TestFixtures

@Suite struct DecompressionTests {
    let text = Array(String(repeating: "the quick brown fox jumps over the lazy dog\n", count: 5000).utf8)

    @Test func detectsCompressionByMagicBytes() {
        #expect(Compression.detect(Compressors.gzip(text)) == .gzip)
        #expect(Compression.detect(Compressors.zstd(text)) == .zstd)
        #expect(Compression.detect(text) == .none)
        #expect(Compression.detect([UInt8]()) == .none)
    }

    @Test func gzipRoundTrips() throws {
        #expect(try Compression.decode(Compressors.gzip(text), limit: 1 << 30) == text)
    }

    @Test func concatenatedGzipMembersReadAsOneStream() throws {
        let half = text.count / 2
        let joined = Compressors.gzip(Array(text[..<half])) + Compressors.gzip(Array(text[half...]))
        #expect(try Compression.decode(joined, limit: 1 << 30) == text)
    }

    @Test func reservedFlagBitsOfEveryMemberAreReadPastAsGoReadsThem() throws {
        // Go's compress/gzip ignores the three flag bits the format
        // reserves; zlib refused the member. Read whole, and read three
        // bytes at a time (every header split across reads).
        let half = text.count / 2
        var first = Compressors.gzip(Array(text[..<half]))
        var second = Compressors.gzip(Array(text[half...]))
        first[3] |= 0x80
        second[3] |= 0x20
        #expect(try Compression.decode(first + second, limit: 1 << 30) == text)
        #expect(try GzipDecoder(MemoryByteStream(first + second, readsAtMost: 3)).readAll(limit: 1 << 30) == text)
        // With the header's own CRC, which covers the bits, zlib decides.
        var checked = Compressors.gzip(text)
        checked[3] |= 0x80 | 0x02
        #expect { try Compression.decode(checked, limit: 1 << 30) } throws: { ($0 as? ArchiveError)?.kind == .corrupt }
    }

    @Test func aMemberNameOrCommentIsReadAsFarAsGoReadsIt() throws {
        // Go reads a member's name and comment into 512 bytes, their zero
        // included; zlib read any length. The header's flags say which
        // follow the ten fixed bytes (8: a name, 16: a comment).
        let member = Compressors.gzip(text)
        func with(_ flag: UInt8, _ length: Int) -> [UInt8] {
            var bytes = member
            bytes[3] |= flag
            bytes.insert(contentsOf: [UInt8](repeating: UInt8(ascii: "n"), count: length) + [0], at: 10)
            return bytes
        }
        for flag: UInt8 in [0x08, 0x10] {
            #expect(try Compression.decode(with(flag, 511), limit: 1 << 30) == text)
            #expect(try Compression.decode(member + with(flag, 511), limit: 1 << 30) == text + text)
            for stream in [with(flag, 512), member + with(flag, 4000)] {
                #expect { try GzipDecoder(MemoryByteStream(stream, readsAtMost: 7)).readAll(limit: 1 << 30) } throws: {
                    ($0 as? ArchiveError)?.kind == .corrupt
                }
            }
        }
    }

    @Test func aFrameInAFormatBeforeZstd1IsRefusedHoweverTheStreamIsCut() throws {
        // libzstd decodes the formats of zstd before 1.0 (magic 0xFD2FB526
        // here: an empty frame), which Go's decoder and so the runtimes do
        // not read; it told one apart only when five of its bytes came in
        // one read.
        let legacy: [UInt8] = [0x26, 0xB5, 0x2F, 0xFD, 0x00, 0xE8, 0x38, 0xB7]
        for stream in [legacy, Compressors.zstd(text) + legacy] {
            for source in [MemoryByteStream(stream), MemoryByteStream(stream, readsAtMost: 3)] {
                #expect { try ZstdDecoder(source, share: nil).readAll(limit: 1 << 30) } throws: {
                    ($0 as? ArchiveError)?.kind == .corrupt
                }
            }
        }
        // A skippable frame between frames is skipped, as Go skips it.
        let skippable: [UInt8] = [0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3]
        let joined = Compressors.zstd(Array(text.prefix(10))) + skippable + Compressors.zstd(Array(text.dropFirst(10)))
        #expect(try ZstdDecoder(MemoryByteStream(joined, readsAtMost: 3), share: nil).readAll(limit: 1 << 30) == text)
    }

    @Test func zstdRoundTrips() throws {
        #expect(try Compression.decode(Compressors.zstd(text), limit: 1 << 30) == text)
    }

    @Test func truncatedStreamsAreCorrupt() throws {
        for compressed in [Compressors.gzip(text), Compressors.zstd(text)] {
            let cut = Array(compressed.prefix(compressed.count / 2))
            #expect { try Compression.decode(cut, limit: 1 << 30) } throws: { ($0 as? ArchiveError)?.kind == .corrupt }
        }
    }

    @Test func corruptedGzipIsCorrupt() throws {
        var bytes = Compressors.gzip(text)
        for i in 20..<60 { bytes[i] ^= 0x5A }
        #expect { try Compression.decode(bytes, limit: 1 << 30) } throws: { ($0 as? ArchiveError)?.kind == .corrupt }
    }

    @Test func outputOverTheLimitIsRefused() throws {
        #expect { try Compression.decode(Compressors.gzip(text), limit: 1000) } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
        }
    }
}
