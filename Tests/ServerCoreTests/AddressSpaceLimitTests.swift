import Foundation
import JSON
import Memory
import TestFixtures
import Testing

/// `ulimit -v`: past it every mapping fails, and a Swift program stops on
/// an allocation that fails.
@Suite struct AddressSpaceLimitOfTheBinary {
    /// The binary run under `ulimit -v` of `kibibytes`.
    private func server(underLimit kibibytes: Int) throws -> ServerProcess {
        try ServerProcess(launcher: ["/bin/bash", "-c", #"ulimit -v "$0" && exec "$@""#, String(kibibytes)])
    }

    /// At 200 MB the server died (SIGSEGV) on its first calls to a
    /// registry; it now says why at start.
    @Test func aServerWithTooLittleAddressSpaceSaysSoAtStart() async throws {
        let p = try server(underLimit: 200 << 10)
        for id in 1...30 {
            p.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["localhost:9/x:\#(id)"]}"#)
        }
        p.closeInput()
        #expect(await p.waitForExit(seconds: 20) == 2)
        #expect(p.stdout.isEmpty)
        let lines = p.stderr.split(separator: "\n").filter { !$0.hasPrefix("==") }
        #expect(lines.count == 1, "\(p.stderr)")
        #expect(lines.first?.hasPrefix("ocirpc: ulimit -v (204800 KiB of address space) is too little") == true)
    }

    /// Under 1 GiB the budgets' defaults are half and an eighth of what is
    /// left past the process's own 512 MiB, as under a container's limit;
    /// they were 2 GiB and 256 MiB, more than the limit itself.
    @Test func theMemoryDefaultsStayUnderTheAddressSpaceLimit() async throws {
        let p = try server(underLimit: 1 << 20)
        p.sendLine(#"{"jsonrpc":"2.0","id":1,"method":"server.stats"}"#)
        for id in 2...31 {
            p.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["localhost:9/x:\#(id)"]}"#)
        }
        p.closeInput()
        #expect(await p.waitForExit(seconds: 60) == 0, "\(p.stderr)")
        let stats = try #require(p.messages.first { $0["id"] == 1 }?["result"], "\(p.stderr)")
        #expect(stats["memoryHeld"]?["budget"] == .integer(256 << 20), "\(stats)")
        #expect(stats["cacheBytes"]?["budget"] == .integer(64 << 20), "\(stats)")
        // Every call answered, for the reason the registry gives.
        let reasons = p.messages.compactMap { $0["error"]?["data"]?["reason"] }
        #expect(reasons.count == 30 && reasons.allSatisfy { $0 == "connection_failed" }, "\(reasons)")
    }
}

@Suite struct AddressSpaceLimitReading {
    @Test func whatIsLeftIsTheLimitPastTheProcesssOwnMappings() {
        #expect(AddressSpaceLimit.usable(within: nil) == nil)
        #expect(AddressSpaceLimit.usable(within: 1 << 30) == 512 << 20)
        #expect(AddressSpaceLimit.usable(within: 100 << 20) == 0)
    }

    @Test func aLimitThatLeavesLessThanTheSmallestBudgetIsAProblem() {
        #expect(AddressSpaceLimit.problem(within: nil) == nil)
        #expect(AddressSpaceLimit.problem(within: (512 + 16) << 20) == nil)
        #expect(AddressSpaceLimit.problem(within: (512 + 15) << 20)?.hasPrefix("ulimit -v (539648 KiB") == true)
    }

    @Test(arguments: [(nil, nil, nil), (1, nil, 1), (nil, 2, 2), (3, 2, 2), (2, 3, 2)] as [(Int?, Int?, Int?)])
    func theLowerLimitIsTheOne(container: Int?, addressSpace: Int?, lowest: Int?) {
        #expect(MemoryLimit.lowest(container, addressSpace) == lowest)
    }
}
