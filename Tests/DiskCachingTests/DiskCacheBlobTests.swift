import Foundation
import Glibc
import Logging
import Registry
import Testing

@testable import DiskCaching

/// Blobs on disk: kept by a hard link to their verified download, served
/// as a file of the caller's own after a hash of every byte.
@Suite struct DiskCacheBlobTests {
    let directory: String
    let cache: DiskCache

    init() throws {
        directory = try stampedCacheDirectory(temporaryCachePath())
        cache = try #require(DiskCache.open(directory: directory, logger: .disabled))
    }

    /// A verified download of `bytes` where the registry client would put it.
    private func download(_ bytes: [UInt8]) throws -> VerifiedBlob {
        let file = cache.downloads.appendingPathComponent("download-\(UUID().uuidString)")
        try Data(bytes).write(to: file)
        return VerifiedBlob(file: file, size: bytes.count, digest: Digest.of(bytes))
    }

    private func contentPath(_ digest: Digest) -> String { directory + "/blobs/sha256/" + digest.hex }

    @Test func aKeptBlobIsServedAsTheCallersOwnFile() throws {
        let bytes = Array(repeating: UInt8(7), count: 3 << 20) + Array("end".utf8)
        let fetched = try download(bytes)
        cache.storeBlob(fetched, repository: "r.test/app")
        fetched.discard()

        let other = try #require(DiskCache.open(directory: directory, logger: .disabled))
        let served = try #require(other.blob(fetched.digest, repository: "r.test/app", limit: 4 << 20))
        #expect(served.size == bytes.count)
        #expect(try Array(served.contents()) == bytes)
        #expect(served.file.path != contentPath(fetched.digest))
        // The caller's discard leaves the cache's copy.
        served.discard()
        #expect(FileManager.default.fileExists(atPath: contentPath(fetched.digest)))
        #expect(other.statistics.hits == 1)
    }

    @Test func aBlobIsServedOnlyForARepositorySeenToHoldIt() throws {
        let fetched = try download(Array("layer".utf8))
        cache.storeBlob(fetched, repository: "r.test/public")
        #expect(cache.blob(fetched.digest, repository: "r.test/private", limit: 100) == nil)
        #expect(cache.blob(fetched.digest, repository: "r.test/public", limit: 100) != nil)
    }

    @Test func aBlobSeenInARepositoryIsNotItsManifest() throws {
        let bytes = Array(#"{"schemaVersion":2,"layers":[]}"#.utf8)
        let fetched = try download(bytes)
        cache.storeBlob(fetched, repository: "r.test/app")
        #expect(cache.manifest(fetched.digest, repository: "r.test/app") == nil)
    }

    @Test func aDamagedBlobIsDeletedAndMissedAndKeptAgain() throws {
        let bytes = Array("the real layer".utf8)
        let fetched = try download(bytes)
        cache.storeBlob(fetched, repository: "r.test/app")
        // Same length, other bytes: only the hash can tell.
        try Data("the fake layer".utf8).write(to: URL(fileURLWithPath: contentPath(fetched.digest)))
        #expect(cache.blob(fetched.digest, repository: "r.test/app", limit: 100) == nil)
        #expect(!FileManager.default.fileExists(atPath: contentPath(fetched.digest)))
        #expect(cache.statistics.corrupt == 1)
        cache.storeBlob(try download(bytes), repository: "r.test/app")
        #expect(try cache.blob(fetched.digest, repository: "r.test/app", limit: 100)?.contents() == Data(bytes))
    }

    @Test func aLinkWhereABlobShouldBeIsNotFollowed() throws {
        let fetched = try download(Array("layer".utf8))
        cache.storeBlob(fetched, repository: "r.test/app")
        unlink(contentPath(fetched.digest))
        #expect(symlink("/etc/passwd", contentPath(fetched.digest)) == 0)
        #expect(cache.blob(fetched.digest, repository: "r.test/app", limit: 1 << 20) == nil)
        var status = stat()
        #expect(lstat(contentPath(fetched.digest), &status) != 0, "the link is deleted")
        #expect(cache.statistics.corrupt == 1)
    }

    @Test func aBlobOverTheLimitAskedForIsNotServed() throws {
        let fetched = try download(Array(repeating: 1, count: 1_000))
        cache.storeBlob(fetched, repository: "r.test/app")
        #expect(cache.blob(fetched.digest, repository: "r.test/app", limit: 999) == nil)
        #expect(cache.blob(fetched.digest, repository: "r.test/app", limit: 1_000) != nil, "a miss, not damage")
    }

    @Test func aBlobWhoseFileWasTrimmedIsAMissAndTheOthersStayServed() throws {
        // Its own directory, stamped as just trimmed: only trimNow() trims it.
        let root = directory + "-trim"
        try stampedCacheDirectory(root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = try #require(DiskCache.open(directory: root, logger: .disabled))
        let kept = try download(Array("kept".utf8))
        cache.storeBlob(kept, repository: "r.test/app")
        let gone = try download(Array("gone".utf8))
        cache.storeBlob(gone, repository: "r.test/app")
        unlink(root + "/blobs/sha256/" + gone.digest.hex)
        #expect(cache.trimNow())
        #expect(cache.blob(kept.digest, repository: "r.test/app", limit: 100) != nil)
        #expect(cache.blob(gone.digest, repository: "r.test/app", limit: 100) == nil)
        #expect(cache.statistics.corrupt == 0, "gone is a miss, not damage")
    }

    @Test func servingAndKeepingLeaveNoTemporaryFilesOfTheirOwn() throws {
        let fetched = try download(Array("layer".utf8))
        cache.storeBlob(fetched, repository: "r.test/app")
        fetched.discard()
        cache.blob(fetched.digest, repository: "r.test/app", limit: 100)?.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.downloads.path).isEmpty)
    }
}
