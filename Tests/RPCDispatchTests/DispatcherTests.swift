import Foundation
import JSON
import Memory
import Synchronization
import Testing
@testable import RPCDispatch

@Suite struct DispatcherRequests {
    @Test func idsAreEchoedExactly() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        let ids = [#""abc""#, "1.0", "1e3", "-0", "12345678901234567890", "null", #""""#]
        for id in ids { dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":\#(id)}"#) }
        let got = await sink.waitFor(ids.count)
        #expect(Set(got.compactMap { $0["id"]?.jsonText }) == Set(ids))
    }

    @Test func invalidIDTypeIsAnInvalidRequest() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":{"a":1}}"#)
        dispatcher.receive(#"{"jsonrpc":"1.0","method":"get_data","id":7}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":8,"params":"x"}"#)
        let got = await sink.waitFor(3)
        #expect(got.count == 3)
        #expect(got.allSatisfy { $0["error"]?["code"] == -32600 && $0["error"]?["data"]?["reason"] == "not_a_request" })
        #expect(Set(got.map { $0["id"]!.jsonText }) == ["null", "7", "8"])
    }

    @Test func handlerErrorsKeepTheirCodeAndReason() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"fail","id":1}"#)
        let got = await sink.waitFor(1)
        #expect(
            got == [
                json(
                    #"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"no such manifest","data":{"reason":"manifest_unknown"}}}"#
                )
            ])
    }

    @Test func progressNotificationsComeBeforeTheResponse() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"progress","id":1,"params":{"token":"t"}}"#)
        let got = await sink.waitFor(4)
        #expect(got.count == 4)
        #expect(got.prefix(3).map { $0["params"]?["value"] } == [0, 1, 2])
        #expect(got.prefix(3).allSatisfy { $0["method"] == "$/progress" && $0["params"]?["token"] == "t" })
        #expect(got.last?["result"] == .object(JSONObject()))
    }
}

@Suite struct DispatcherParamsValidation {
    private func error(for request: String) async -> JSONValue? {
        let sink = CollectingSink()
        let started = Counter()
        let dispatcher = Dispatcher(registry: testRegistry(started: started), sink: sink)
        dispatcher.receive(request)
        let got = await sink.waitFor(1)
        return got.first?["error"]
    }

    @Test func missingRequiredParam() async {
        let e = await error(for: #"{"jsonrpc":"2.0","method":"echo","id":1,"params":{"paths":[]}}"#)
        #expect(e?["code"] == -32602)
        #expect(e?["data"]?["reason"] == "missing_param")
    }

    @Test func wrongTypeUsesTheParamsReason() async {
        let e = await error(for: #"{"jsonrpc":"2.0","method":"echo","id":1,"params":["r", "notarray"]}"#)
        #expect(e?["code"] == -32602)
        #expect(e?["data"]?["reason"] == "invalid_paths")
        let e2 = await error(for: #"{"jsonrpc":"2.0","method":"echo","id":1,"params":["r", ["a", 1]]}"#)
        #expect(e2?["data"]?["reason"] == "invalid_paths")
        let e3 = await error(for: #"{"jsonrpc":"2.0","method":"echo","id":1,"params":[5, []]}"#)
        #expect(e3?["data"]?["reason"] == "wrong_type")
    }

    @Test func unknownNamedParam() async {
        let e = await error(
            for: #"{"jsonrpc":"2.0","method":"echo","id":1,"params":{"ref":"r","paths":[],"colour":1}}"#)
        #expect(e?["data"]?["reason"] == "unknown_param")
    }

    @Test func tooManyPositionalParams() async {
        // "mode" is named-only, so only two positions exist.
        let e = await error(for: #"{"jsonrpc":"2.0","method":"echo","id":1,"params":["r", [], "x"]}"#)
        #expect(e?["data"]?["reason"] == "wrong_arity")
    }

    @Test func validParamsReachTheHandlerByName() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"echo","id":1,"params":["r", ["a"]]}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"echo","id":2,"params":{"paths":[],"ref":"q","mode":"m"}}"#)
        let got = sortedByID(await sink.waitFor(2))
        #expect(
            got.map { $0["result"] } == [
                json(#"{"ref":"r","paths":["a"]}"#), json(#"{"paths":[],"ref":"q","mode":"m"}"#),
            ])
    }

    @Test func invalidParamsNeverRunTheHandler() async {
        let sink = CollectingSink()
        let started = Counter()
        let dispatcher = Dispatcher(registry: testRegistry(started: started), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"sleep","id":1,"params":{"x":1}}"#)
        _ = await sink.waitFor(1)
        #expect(started.value == 0)
        #expect(dispatcher.inFlightCount == 0)
    }
}

@Suite struct DispatcherCancellation {
    @Test func cancelDuringTheRequestAnswersCancelled() async {
        let sink = CollectingSink()
        let started = Counter()
        let dispatcher = Dispatcher(registry: testRegistry(started: started), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"sleep","id":"s"}"#)
        while started.value == 0 { await Task.yield() }
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"s"}}"#)
        let got = await sink.waitFor(1)
        #expect(
            got == [
                json(
                    #"{"jsonrpc":"2.0","id":"s","error":{"code":-32800,"message":"Request cancelled","data":{"reason":"cancelled"}}}"#
                )
            ])
        await dispatcher.waitUntilIdle()
        #expect(sink.all.count == 1)
    }

    @Test func cancelBeforeTheHandlerStartsAnswersCancelled() async {
        let sink = CollectingSink()
        let gate = Gate()
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate), sink: sink)
        // Both messages are handled back to back on this thread, so the
        // cancel arrives before the task has had a chance to run.
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":7}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":7}}"#)
        gate.open()
        await dispatcher.waitUntilIdle()
        let got = await sink.waitFor(1)
        #expect(got.count == 1)
        #expect(got.first?["error"]?["code"] == -32800)
    }

    /// The end of a session waits on an OS thread, with no task to run
    /// (SIGTERM's drain): it times out while a call runs, and is woken when
    /// the last one ends.
    @Test func aThreadWaitingForIdleTimesOutOrIsWokenByTheLastCall() async {
        let sink = CollectingSink()
        let gate = Gate()
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":1}"#)
        let outcomes = await withCheckedContinuation { (done: CheckedContinuation<(Bool, Bool), Never>) in
            Thread.detachNewThread {
                let early = dispatcher.waitUntilIdle(seconds: 0.05)
                gate.open()
                done.resume(returning: (early, dispatcher.waitUntilIdle(seconds: 60)))
            }
        }
        #expect(outcomes == (false, true))
        #expect(dispatcher.inFlightCount == 0)
        #expect(await sink.waitFor(1).count == 1)
    }

    @Test func cancelAfterCompletionChangesNothing() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":1}"#)
        await dispatcher.waitUntilIdle()
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"never-sent"}}"#)
        await dispatcher.waitUntilIdle()
        try? await Task.sleep(for: .milliseconds(20))
        #expect(sink.all == [json(#"{"jsonrpc":"2.0","id":1,"result":["hello",5]}"#)])
    }

    @Test func cancelOnlyTouchesTheNamedRequest() async {
        let sink = CollectingSink()
        let gate = Gate()
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate), sink: sink)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":1}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":2}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}"#)
        gate.open()
        let got = sortedByID(await sink.waitFor(2))
        #expect(got.map { $0["error"]?["code"] } == [-32800, nil])
        #expect(got.last?["result"] == "opened")
    }

    @Test func cancelStormAnswersEveryRequestExactlyOnce() async {
        let sink = CollectingSink()
        let gate = Gate()
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate), sink: sink)
        let n = 2000
        for i in 0..<n {
            dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":\#(i)}"#)
            if i % 2 == 0 { dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":\#(i)}}"#) }
            if i == n / 2 { gate.open() }
        }
        await dispatcher.waitUntilIdle()
        let got = await sink.waitFor(n)
        #expect(got.count == n)
        #expect(Set(got.compactMap { $0["id"]?.intValue }).count == n)
        for response in got {
            let id = response["id"]?.intValue ?? -1
            if id % 2 == 0 { #expect(response["error"]?["code"] == -32800, "id \(id)") }
        }
    }
}

@Suite struct DispatcherUnderLoad {
    @Test func tenThousandRequestsInFlightAreEachAnsweredOnce() async {
        let sink = CollectingSink()
        let gate = Gate()
        let started = Counter()
        let n = 10_000
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate, started: started), sink: sink, maxRunning: n)
        for i in 0..<n { dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":\#(i)}"#) }
        #expect(dispatcher.inFlightCount == n)
        let deadline = ContinuousClock.now + .seconds(30)
        while started.value < n && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        #expect(started.value == n, "all handlers are waiting at once")
        #expect(sink.all.isEmpty)
        gate.open()
        await dispatcher.waitUntilIdle()
        let got = await sink.waitFor(n)
        #expect(got.count == n)
        #expect(Set(got.compactMap { $0["id"]?.intValue }) == Set(0..<n))
        #expect(got.allSatisfy { $0["result"] == "opened" })
    }

    /// Past `maxRunning`, calls wait in a queue: cancelling a waiting one
    /// answers it at once, control methods skip the queue, and every call
    /// is answered once when the running ones finish.
    @Test func callsPastTheRunningLimitWaitAndCanBeCancelledWhileWaiting() async {
        let sink = CollectingSink()
        let gate = Gate()
        let started = Counter()
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate, started: started), sink: sink, maxRunning: 4)
        for i in 0..<100 { dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":\#(i)}"#) }
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"wait","id":"last"}"#)
        try? await Task.sleep(for: .milliseconds(200))
        #expect(started.value == 4)
        #expect(dispatcher.queuedCount == 97)
        #expect(dispatcher.inFlightCount == 101)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"status","id":"s"}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":50}}"#)
        let early = await sink.waitFor(2)
        #expect(Set(early.map { $0["id"]?.jsonText ?? "" }) == [#""s""#, "50"], "\(early)")
        #expect(early.first { $0["id"] == 50 }?["error"]?["code"] == -32800)
        #expect(early.first { $0["id"] == "s" }?["result"] == "ok")
        #expect(started.value == 4)
        gate.open()
        await dispatcher.waitUntilIdle()
        // 100 waits answered (50 was cancelled), "s" and the cancellation.
        let got = await sink.waitFor(102)
        #expect(got.count == 102)
        let waits = got.filter { $0["result"] == "opened" }
        #expect(waits.count == 100)
        #expect(
            Set(waits.map { $0["id"]?.jsonText ?? "" })
                == Set((0..<100).filter { $0 != 50 }.map { "\($0)" } + [#""last""#]))
        #expect(started.value == 100)
    }

    @Test func aResultOverTheResponseLimitIsAnError() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink, maxResponseBytes: 40)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":1}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"foobar","id":2}"#)
        let got = await sink.waitFor(2)
        #expect(got.first { $0["id"] == 1 }?["error"]?["data"]?["reason"] == "response_too_large")
        #expect(got.first { $0["id"] == 2 }?["result"] == .null)
    }

    @Test func anAnswerTheMemoryBudgetHasNoRoomForIsARetryableError() async {
        let sink = CollectingSink()
        let small = Dispatcher.unrefusedAnswerBytes
        let memory = MemoryBudget(limit: 3 * small)
        var registry = MethodRegistry()
        registry.register([sizedAnswers("answers")])
        let dispatcher = Dispatcher(registry: registry, sink: sink, memory: memory)
        // Over the budget, then under it (each taken twice over).
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"answers","params":[\#(2 * small)],"id":1}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"answers","params":[\#(small + 1)],"id":2}"#)
        let got = await sink.waitFor(2)
        let error = got.first { $0["id"] == 1 }?["error"]
        #expect(error?["code"] == -32005)
        #expect(error?["data"]?["reason"] == "memory_limit")
        #expect(error?["data"]?["retryable"] == true)
        #expect(got.first { $0["id"] == 2 }?["result"]?.stringValue?.count == small + 1)
        #expect(await heldOnceSettled(memory) == 0)
    }

    @Test func aSmallAnswerIsNeverRefusedForMemory() async {
        let sink = CollectingSink()
        let memory = MemoryBudget(limit: 1000)
        memory.add(1000)
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink, memory: memory)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":1}"#)
        #expect(await sink.waitFor(1).first?["result"] == ["hello", 5])
        memory.giveBack(1000)
    }

    @Test func aCallThatHoldsMemoryTakesFromItsShareUntilItIsAnswered() async {
        let sink = CollectingSink()
        let memory = MemoryBudget(limit: 1000)
        var registry = MethodRegistry()
        registry.register([
            MethodSpec("reads", holdsMemory: true) { _, _ in
                guard let share = MemoryShare.current else { return "no share" }
                try share.take(600)
                return .integer(memory.heldBytes)
            },
            MethodSpec("answers") { _, _ in MemoryShare.current == nil ? "no share" : "a share" },
        ])
        let dispatcher = Dispatcher(registry: registry, sink: sink, memory: memory)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"reads","id":1}"#)
        let first = await sink.waitFor(1)
        #expect(first.first?["result"] == 600)
        // Given back once the call's task is done with its answer.
        #expect(await heldOnceSettled(memory) == 0)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"reads","id":2}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"answers","id":3}"#)
        let got = await sink.waitFor(3)
        #expect(got.first { $0["id"] == 2 }?["result"] == 600)
        #expect(got.first { $0["id"] == 3 }?["result"] == "no share")
    }

    /// Whether or not its call read anything, an answer is taken twice
    /// over (the answer, then its message) before its message is made.
    @Test func everyAnswerIsTakenTwiceOverBeforeItIsWritten() async {
        let sink = CollectingSink()
        let small = Dispatcher.unrefusedAnswerBytes
        let memory = MemoryBudget(limit: 4 * small)
        var registry = MethodRegistry()
        registry.register([sizedAnswers("reads", holdsMemory: true), sizedAnswers("answers")])
        let dispatcher = Dispatcher(registry: registry, sink: sink, memory: memory)
        // Three times `small` of answer: alone it fits; written twice over it
        // does not. Half as much fits either way. One call at a time: two of
        // them at once would not fit together.
        let calls = [
            ("reads", 3 * small), ("answers", 3 * small), ("reads", 3 * small / 2), ("answers", 3 * small / 2),
        ]
        for (id, (method, size)) in calls.enumerated() {
            dispatcher.receive(#"{"jsonrpc":"2.0","method":"\#(method)","params":[\#(size)],"id":\#(id)}"#)
            _ = await sink.waitFor(id + 1)
            #expect(await heldOnceSettled(memory) == 0)
        }
        let got = await sink.waitFor(calls.count)
        #expect(got.first { $0["id"] == 0 }?["error"]?["data"]?["reason"] == "memory_limit")
        #expect(got.first { $0["id"] == 1 }?["error"]?["data"]?["reason"] == "memory_limit")
        #expect(got.first { $0["id"] == 2 }?["result"]?.stringValue?.count == 3 * small / 2)
        #expect(got.first { $0["id"] == 3 }?["result"]?.stringValue?.count == 3 * small / 2)
    }

    @Test func aCallRefusedByTheBudgetIsARetryableLimitError() async {
        let sink = CollectingSink()
        let memory = MemoryBudget(limit: 1000)
        var registry = MethodRegistry()
        registry.register([
            MethodSpec("greedy", holdsMemory: true) { _, _ in
                try MemoryShare.current?.take(2000)
                return "held"
            }
        ])
        let dispatcher = Dispatcher(registry: registry, sink: sink, memory: memory)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"greedy","id":1}"#)
        let error = await sink.waitFor(1).first?["error"]
        #expect(error?["code"] == -32005)
        #expect(error?["data"]?["reason"] == "memory_limit")
        #expect(error?["data"]?["retryable"] == true)
        #expect(await heldOnceSettled(memory) == 0)
    }

    @Test func batchMembersWaitTheirTurnLikeAnyCall() async {
        let sink = CollectingSink()
        let gate = Gate()
        let started = Counter()
        let dispatcher = Dispatcher(registry: testRegistry(gate: gate, started: started), sink: sink, maxRunning: 2)
        let members = (0..<50).map { #"{"jsonrpc":"2.0","method":"wait","id":\#($0)}"# }.joined(separator: ",")
        dispatcher.receive("[" + members + "]")
        try? await Task.sleep(for: .milliseconds(200))
        #expect(started.value == 2)
        #expect(dispatcher.inFlightCount == 50)
        gate.open()
        await dispatcher.waitUntilIdle()
        let got = await sink.waitFor(1)
        #expect(got.first?.arrayValue?.count == 50)
    }

    @Test func duplicateIDsAreAnsweredOncePerRequest() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        for _ in 0..<5 { dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":1}"#) }
        await dispatcher.waitUntilIdle()
        let got = await sink.waitFor(5)
        #expect(got.count == 5)
    }

    @Test func shuttingDownRefusesNewRequestsButNotNotifications() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.beginShutdown()
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":1}"#)
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"foobar"}"#)
        let got = await sink.waitFor(1)
        #expect(got.count == 1)
        #expect(got.first?["error"]?["data"]?["reason"] == "shutting_down")
    }

    @Test func requestCountsByMethod() async {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        for i in 0..<3 { dispatcher.receive(#"{"jsonrpc":"2.0","method":"get_data","id":\#(i)}"#) }
        dispatcher.receive(#"{"jsonrpc":"2.0","method":"foobar"}"#)
        await dispatcher.waitUntilIdle()
        #expect(dispatcher.requestsByMethod == ["get_data": 3, "foobar": 1])
    }
}

/// What `memory` holds once the calls' tasks are done with their answers
/// (given back just after the answer is sent): waits up to 10 s for zero.
private func heldOnceSettled(_ memory: MemoryBudget) async -> Int {
    let deadline = ContinuousClock.now + .seconds(10)
    while memory.heldBytes != 0 && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
    return memory.heldBytes
}

/// A method answering a string of `size` bytes (its one param).
private func sizedAnswers(_ name: String, holdsMemory: Bool = false) -> MethodSpec {
    MethodSpec(name, params: [ParamSpec("size", .any)], holdsMemory: holdsMemory) { params, _ in
        .string(String(repeating: "x", count: params["size"]?.intValue ?? 0))
    }
}
