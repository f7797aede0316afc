import Locking

/// Collects the responses to the members of one JSON-RPC batch and sends
/// them as a single array once the last one arrives.
final class BatchReply: Sendable {
    private struct State {
        var responses: [[UInt8]] = []
        var remaining: Int
    }

    private let state: Locked<State>
    private let sink: any MessageSink

    /// - Parameter expected: how many members will answer (non-notifications).
    init(expected: Int, sink: any MessageSink) {
        self.state = Locked(State(remaining: expected))
        self.sink = sink
    }

    func add(_ response: [UInt8]) {
        let complete: [[UInt8]]? = state.withLock { state in
            state.responses.append(response)
            state.remaining -= 1
            return state.remaining == 0 ? state.responses : nil
        }
        guard let complete else { return }
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(complete.reduce(2) { $0 + $1.count + 1 })
        for (index, response) in complete.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: response)
        }
        out.append(UInt8(ascii: "]"))
        sink.send(out)
    }
}
