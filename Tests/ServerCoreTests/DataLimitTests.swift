import Foundation
import JSON
import Memory
import TestFixtures
import Testing

/// `ulimit -d`: every private writable mapping counts against it, the
/// heap and each thread's stack among them.
@Suite struct DataLimitOfTheBinary {
    /// The binary run under `ulimit -d` of `kibibytes`, with 8 MiB stacks
    /// and a disk cache, as by default.
    private func server(underLimit kibibytes: Int, cache: String) throws -> ServerProcess {
        try ServerProcess(
            environment: ["OCIRPC_CACHE_DIR": cache],
            launcher: ["/bin/bash", "-c", #"ulimit -s 8192 -d "$0" && exec "$@""#, String(kibibytes)])
    }

    private func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-data-\(UUID().uuidString)").path
    }

    /// At 50 MB the server answered 60 calls at once in some runs and none
    /// in others, where it hung: libdispatch could not map another
    /// thread's stack, and waited for ever. It now says why at start.
    @Test func aServerWithTooLittleDataSaysSoAtStart() async throws {
        let cache = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let p = try server(underLimit: 50_000, cache: cache)
        for id in 1...60 {
            p.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["localhost:9/x:\#(id)"]}"#)
        }
        p.closeInput()
        #expect(await p.waitForExit(seconds: 20) == 2)
        #expect(p.stdout.isEmpty)
        let lines = p.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(p.stderr)")
        #expect(lines.first?.hasPrefix("ocirpc: ulimit -d (50000 KiB of data) is too little") == true, "\(p.stderr)")
    }

    /// The budgets' defaults are half and an eighth of what the limit
    /// leaves past the heap's share and the threads' stacks; they were
    /// 2 GiB and 256 MiB, more than the limit itself.
    @Test func theMemoryDefaultsStayUnderTheDataLimit() async throws {
        let own = DataLimit.processBytes(processors: Processors.available, stackBytes: 8 << 20)
        let limit = own + (256 << 20)
        let cache = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let p = try server(underLimit: limit >> 10, cache: cache)
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"server.stats"}"#)
        for id in 2...61 {
            p.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["localhost:9/x:\#(id)"]}"#)
        }
        p.closeInput()
        #expect(await p.waitForExit(seconds: 60) == 0, "\(p.stderr)")
        let stats = try #require(p.messages.first { $0["id"] == 1 }?["result"], "\(p.stderr)")
        #expect(stats["memoryHeld"]?["budget"] == .integer(128 << 20), "\(stats)")
        #expect(stats["cacheBytes"]?["budget"] == .integer(32 << 20), "\(stats)")
        let reasons = p.messages.compactMap { $0["error"]?["data"]?["reason"] }
        #expect(reasons.count == 60 && reasons.allSatisfy { $0 == "connection_failed" }, "\(reasons)")
    }
}

@Suite struct DataLimitReading {
    @Test func theProcessHoldsItsHeapsShareAndEveryThreadsStack() {
        // 16 MiB, 3 threads of 8 MiB, and libdispatch's 2 + 4 of 1 MiB.
        #expect(DataLimit.processBytes(processors: 2, stackBytes: 1 << 20) == (16 + 24 + 6) << 20)
        #expect(DataLimit.processBytes(processors: 8, stackBytes: 8 << 20) == (16 + 24 + 96) << 20)
    }

    @Test func whatIsLeftIsTheLimitPastTheProcesssOwnData() {
        #expect(DataLimit.usable(within: nil, processors: 2, stackBytes: 8 << 20) == nil)
        #expect(DataLimit.usable(within: 1 << 30, processors: 2, stackBytes: 8 << 20) == (1024 - 88) << 20)
        #expect(DataLimit.usable(within: 50 << 20, processors: 2, stackBytes: 8 << 20) == 0)
    }

    @Test func aLimitThatLeavesLessThanTheSmallestBudgetIsAProblem() {
        #expect(DataLimit.problem(within: nil, processors: 2, stackBytes: 8 << 20) == nil)
        #expect(DataLimit.problem(within: (88 + 16) << 20, processors: 2, stackBytes: 8 << 20) == nil)
        let problem = DataLimit.problem(within: (88 + 15) << 20, processors: 2, stackBytes: 8 << 20)
        #expect(
            problem?.hasPrefix("ulimit -d (105472 KiB of data) is too little") == true, "\(String(describing: problem))"
        )
        #expect(problem?.contains("about 88 MiB") == true)
    }
}
