import Reasons
import JSON
import Locking
import Synchronization
import Testing
@testable import RPCDispatch

/// A sink that keeps every message it is sent, parsed.
final class CollectingSink: MessageSink {
    // A pthread lock (not Synchronization.Mutex) so the thread sanitizer sees it.
    private let messages = Locked<[JSONValue]>([])

    func send(_ message: [UInt8]) {
        let value =
            (try? JSONParser.parse(message)) ?? .string("unparseable: \(String(decoding: message, as: UTF8.self))")
        messages.withLock { $0.append(value) }
    }

    var all: [JSONValue] { messages.withLock { $0 } }

    /// Waits for `count` messages, at most `seconds`: long, since it
    /// returns as soon as they are in, and the whole suite running at once
    /// (the parity tests' Go programs among it) can hold a message back for
    /// seconds.
    func waitFor(_ count: Int, seconds: Double = 30) async -> [JSONValue] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let current = all
            if current.count >= count { return current }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return all
    }
}

/// A counter shared between tasks.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    func increment() { atomic.add(1, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

/// A one-shot signal tasks can await.
final class Gate: Sendable {
    private let state = Locked<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }
}

/// Methods used by the dispatcher tests, including those of the JSON-RPC
/// 2.0 specification's examples.
func testRegistry(gate: Gate = Gate(), started: Counter? = nil) -> MethodRegistry {
    var registry = MethodRegistry()
    registry.register([
        MethodSpec("subtract", params: [ParamSpec("minuend", .any), ParamSpec("subtrahend", .any)]) { params, _ in
            let a = Int(params["minuend"]?.numberText ?? "") ?? 0
            let b = Int(params["subtrahend"]?.numberText ?? "") ?? 0
            return .integer(a - b)
        },
        MethodSpec("sum", params: [ParamSpec("a", .any), ParamSpec("b", .any), ParamSpec("c", .any)]) { params, _ in
            let total = ["a", "b", "c"].compactMap { params[$0]?.intValue }.reduce(0, +)
            return .integer(total)
        },
        MethodSpec("get_data") { _, _ in ["hello", 5] },
        MethodSpec("notify_hello", params: [ParamSpec("n", .any)]) { _, _ in .null },
        MethodSpec("notify_sum", params: [ParamSpec("a", .any), ParamSpec("b", .any), ParamSpec("c", .any)]) { _, _ in
            .null
        },
        MethodSpec(
            "update",
            params: [
                ParamSpec("a", .any, required: false), ParamSpec("b", .any, required: false),
                ParamSpec("c", .any, required: false), ParamSpec("d", .any, required: false),
                ParamSpec("e", .any, required: false),
            ]
        ) { _, _ in .null },
        MethodSpec("foobar") { _, _ in .null },
        MethodSpec("status", runsImmediately: true) { _, _ in "ok" },
        MethodSpec(
            "echo",
            params: [
                ParamSpec("ref", .string), ParamSpec("paths", .stringArray, wrongTypeReason: .invalidPaths),
                ParamSpec("mode", .string, required: false, positional: false),
            ]
        ) { params, _ in
            .object(params.values)
        },
        // Waits for the gate (or cancellation) and reports how it ended.
        MethodSpec("wait") { _, _ in
            started?.increment()
            await gate.wait()
            try Task.checkCancellation()
            return "opened"
        },
        // Sleeps until cancelled.
        MethodSpec("sleep") { _, _ in
            started?.increment()
            try await Task.sleep(for: .seconds(60))
            return "woke"
        },
        MethodSpec("fail") { _, _ in
            throw RPCError(.notFound, reason: .manifestUnknown, message: "no such manifest")
        },
        MethodSpec("progress", params: [ParamSpec("token", .stringOrNumber)]) { params, context in
            for i in 0..<3 { context.notifications.progress(token: params["token"]!, value: .integer(i)) }
            return [:]
        },
    ])
    return registry
}

extension Dispatcher {
    func receive(_ text: String) {
        Array(text.utf8).withUnsafeBytes { receive($0) }
    }
}

/// Parses a JSON literal written in a test.
func json(_ text: String) -> JSONValue {
    do { return try JSONParser.parse(text) } catch { return .string("invalid test JSON: \(error)") }
}

/// Sorts responses by their id text, for order-independent comparison.
func sortedByID(_ values: [JSONValue]) -> [JSONValue] {
    values.sorted { ($0["id"]?.jsonText ?? "") < ($1["id"]?.jsonText ?? "") }
}
