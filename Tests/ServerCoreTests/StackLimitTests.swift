import JSON
import TestFixtures
import Testing

/// `ulimit -s`: how far the main thread's stack may grow, and (glibc's
/// default) the stack of every thread libdispatch starts.
@Suite struct StackLimitOfTheBinary {
    /// Under a soft limit of 28 KiB the server died (SIGSEGV) before its
    /// first answer; the soft limit is raised to 1 MiB, and every call is
    /// answered.
    @Test func aSmallSoftStackLimitIsRaisedAndEveryCallAnswered() async throws {
        let p = try ServerProcess(launcher: ["/bin/bash", "-c", #"ulimit -S -s "$0" && exec "$@""#, "24"])
        p.sendLine(#"{"jsonrpc":"2.0","id":0,"method":"server.stats"}"#)
        let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        for id in 1...30 {
            p.sendLine(
                #"{"jsonrpc":"2.0","id":\#(id),"method":"ec.oci.image_manifest","params":["localhost:9/x:\#(id)"]}"#)
        }
        p.sendLine(#"{"jsonrpc":"2.0","id":31,"method":"ec.oci.blob","params":\#(deep)}"#)
        p.closeInput()
        #expect(await p.waitForExit(seconds: 60) == 0, "\(p.stderr)")
        let answered = Set(p.messages.compactMap { $0["id"].map { "\($0)" } })
        #expect(answered.count == 32, "\(p.messages.count) answers; \(p.stderr)")
    }
}
