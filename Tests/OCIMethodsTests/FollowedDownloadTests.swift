import Archive
import Foundation
import Registry
import Testing
import TestFixtures

@testable import OCIMethods

/// A reader following a download's file as it is written: the bytes it
/// reads are the file's, however the writes are cut, it ends only where the
/// download ends verified as its file, and anything else loses the thread.
@Suite struct FollowedDownloadTests {
    /// A file written part by part on another thread, as the download
    /// writes it, telling `progress` of each part.
    final class Writer: @unchecked Sendable {
        let progress = DownloadProgress()
        let path: String

        init() {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("followed-\(UUID().uuidString)").path
        }

        deinit { unlink(path) }

        /// Begins the file and writes `bytes` in parts of the given sizes.
        func write(_ bytes: [UInt8], parts: [Int]) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            progress.began(path: path)
            let handle = FileHandle(forWritingAtPath: path)!
            var written = 0
            for size in parts where written < bytes.count {
                let part = bytes[written..<min(bytes.count, written + size)]
                handle.write(Data(part))
                written += part.count
                progress.wrote(written, to: path)
            }
            try? handle.close()
        }
    }

    /// Reads `stream` to its end, or to its first error.
    static func readAll(_ stream: FollowedDownload) -> Result<[UInt8], ArchiveError> {
        Result { () throws(ArchiveError) -> [UInt8] in try stream.readAll(limit: 1 << 30) }
    }

    @Test(arguments: [1, 7, 4096, 100_000])
    func theBytesReadAreTheFilesHoweverTheWritesAreCut(part: Int) async throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let writer = Writer()
        let followed = FollowedDownload(writer.progress)
        async let read = onThreadOfItsOwn { () -> (prefix: [UInt8], rest: Result<[UInt8], ArchiveError>) in
            let prefix = (try? followed.peek(8)) ?? []
            return (prefix, Self.readAll(followed))
        }
        let parts = (0..<(300_000 / part + 2)).map { index in part + index % 3 }
        await onThreadOfItsOwn { writer.write(bytes, parts: parts) }
        writer.progress.end(verified: writer.path)
        let (prefix, rest) = await read
        #expect(prefix == Array(bytes.prefix(8)))
        #expect(try rest.get() == bytes)
        #expect(followed.followed(verifiedPath: writer.path))
    }

    @Test func anotherAttemptLosesTheThread() async throws {
        let first = Writer()
        let followed = FollowedDownload(first.progress)
        first.write(Array("first attempt".utf8), parts: [5])
        var buffer = [UInt8](repeating: 0, count: 5)
        let count = try buffer.withUnsafeMutableBytes { try followed.read(into: $0) }
        #expect(count == 5)
        // The retry writes another file; the reader may not go on in it.
        let second = FileManager.default.temporaryDirectory.appendingPathComponent("second-\(UUID().uuidString)").path
        defer { unlink(second) }
        _ = FileManager.default.createFile(atPath: second, contents: Data("second attempt".utf8))
        first.progress.began(path: second)
        first.progress.wrote(14, to: second)
        first.progress.end(verified: second)
        #expect(throws: ArchiveError.self) { try Self.readAll(followed).get() }
        #expect(!followed.followed(verifiedPath: second))
        #expect(!followed.followed(verifiedPath: first.path))
    }

    @Test func aFailedDownloadEndsNoReadButLosesTheThread() async throws {
        let writer = Writer()
        let followed = FollowedDownload(writer.progress)
        writer.write(Array("all of it, unverified".utf8), parts: [100])
        writer.progress.end(verified: nil)
        #expect(throws: ArchiveError.self) { try Self.readAll(followed).get() }
        #expect(!followed.followed(verifiedPath: writer.path))
    }

    @Test func aBlobAtHandWithoutADownloadLosesTheThread() async throws {
        let progress = DownloadProgress()
        let followed = FollowedDownload(progress)
        progress.end(verified: "/kept/elsewhere")
        #expect(throws: ArchiveError.self) { try followed.peek(8) }
        #expect(!followed.followed(verifiedPath: "/kept/elsewhere"))
    }

    /// `reached` tells when the attempt under way has written a count of
    /// bytes, or that the download ended, or the call was cancelled, first;
    /// a waiter waits for the change that tells, and each hears once.
    @Test func aDownloadTellsWhenItHasComeSoFarOrEndedFirst() async throws {
        let writer = Writer()
        async let far = writer.progress.reached(1000)
        async let near = writer.progress.reached(10)
        try await Task.sleep(for: .milliseconds(50))
        writer.write([UInt8](repeating: 1, count: 500), parts: [5, 495])
        #expect(await near)
        #expect(await writer.progress.reached(500))
        async let unreached = writer.progress.reached(1000)
        writer.progress.end(verified: writer.path)
        #expect(await !far)
        #expect(await !unreached)
        #expect(await !writer.progress.reached(600), "ended")

        let cancelled = DownloadProgress()
        async let waiting = cancelled.reached(1)
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        #expect(await !waiting)
    }

    @Test func aWaitingReaderStopsWhenCancelled() async throws {
        let writer = Writer()
        let followed = FollowedDownload(writer.progress)
        writer.write(Array("part".utf8), parts: [4])
        async let read = onThreadOfItsOwn { Self.readAll(followed) }
        writer.progress.cancel()
        let result = await read
        #expect(throws: ArchiveError.self) { try result.get() }
        if case .failure(let error) = result { #expect(error.kind == .cancelled) }
    }

    /// Readers following downloads each take a thread: no more than
    /// `readers.maxThreads` at once (other tests may hold some places
    /// meanwhile).
    @Test func noMoreReadersFollowDownloadsThanAllowed() {
        let readers = FollowedDownload.readers
        var admitted = 0
        while admitted <= readers.maxThreads, readers.admit() { admitted += 1 }
        for _ in 0..<admitted { readers.leave() }
        #expect(readers.maxThreads == 64)
        #expect(admitted > 0 && admitted <= readers.maxThreads)
    }
}
