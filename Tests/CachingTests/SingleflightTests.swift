import Caching
import Dispatch
import Synchronization
import Testing

@Suite struct SingleflightTests {
    struct Failure: Error, Equatable {}

    /// Work that waits until released, counting how often it ran.
    final class Gate: Sendable {
        let runs = Atomic<Int>(0)
        let released = Atomic<Bool>(false)
        let cancelled = Atomic<Bool>(false)

        var wasCancelled: Bool { cancelled.load(ordering: .relaxed) }
        var runCount: Int { runs.load(ordering: .relaxed) }

        func work(_ value: Int) async throws -> Int {
            runs.add(1, ordering: .relaxed)
            while !released.load(ordering: .relaxed) {
                if Task.isCancelled {
                    cancelled.store(true, ordering: .relaxed)
                    throw CancellationError()
                }
                try? await Task.sleep(for: .milliseconds(1))
            }
            return value
        }
    }

    private func waitUntil(_ condition: () -> Bool) async {
        for _ in 0..<5000 where !condition() { try? await Task.sleep(for: .milliseconds(1)) }
    }

    @Test func concurrentCallersShareOneRun() async throws {
        let flights = Singleflight<Int>()
        let gate = Gate()
        let results = await withTaskGroup(of: Int?.self) { group in
            for _ in 0..<50 { group.addTask { try? await flights.run("k") { try await gate.work(7) } } }
            await waitUntil { flights.joins == 49 }
            gate.released.store(true, ordering: .relaxed)
            return await group.reduce(into: [Int?]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: 7, count: 50))
        #expect(gate.runCount == 1)
        #expect(flights.inFlight == 0)
    }

    @Test func everyWaiterGetsTheSameError() async {
        let flights = Singleflight<Int>()
        let errors = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await flights.run("k") {
                            try await Task.sleep(for: .milliseconds(50))
                            throw Failure()
                        }
                        return false
                    } catch {
                        return error is Failure
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(errors == Array(repeating: true, count: 5))
    }

    @Test func aCancelledWaiterLeavesTheOthersUnaffected() async throws {
        let flights = Singleflight<Int>()
        let gate = Gate()
        let leaver = Task { try await flights.run("k") { try await gate.work(1) } }
        await waitUntil { gate.runs.load(ordering: .relaxed) == 1 }
        let stayer = Task { try await flights.run("k") { try await gate.work(2) } }
        await waitUntil { flights.joins == 1 }
        leaver.cancel()
        await #expect(throws: CancellationError.self) { try await leaver.value }
        #expect(!gate.wasCancelled)
        gate.released.store(true, ordering: .relaxed)
        #expect(try await stayer.value == 1)
        #expect(gate.runCount == 1)
    }

    @Test func theWorkIsCancelledWhenTheLastWaiterLeaves() async {
        let flights = Singleflight<Int>()
        let gate = Gate()
        let a = Task { try await flights.run("k") { try await gate.work(1) } }
        await waitUntil { gate.runs.load(ordering: .relaxed) == 1 }
        let b = Task { try await flights.run("k") { try await gate.work(1) } }
        await waitUntil { flights.joins == 1 }
        a.cancel()
        b.cancel()
        _ = try? await a.value
        _ = try? await b.value
        await waitUntil { gate.cancelled.load(ordering: .relaxed) }
        #expect(gate.wasCancelled)
        #expect(flights.inFlight == 0)
    }

    @Test func failuresAreNotRemembered() async throws {
        let flights = Singleflight<Int>()
        await #expect(throws: Failure.self) { try await flights.run("k") { throw Failure() } }
        #expect(try await flights.run("k") { 5 } == 5)
    }
}

/// Runs jobs on one dispatch queue, so work can tell where it runs.
private final class QueueExecutor: TaskExecutor, @unchecked Sendable {
    static let marker = DispatchSpecificKey<Bool>()
    let queue = DispatchQueue(label: "test.executor")

    init() { queue.setSpecific(key: Self.marker, value: true) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    static var isCurrent: Bool { DispatchQueue.getSpecific(key: marker) == true }
}

@Suite struct FlightExecutorTests {
    @Test func aFlightRunsWhereItsFirstCallerPrefersToRun() async throws {
        let flights = Singleflight<Bool>()
        let executor = QueueExecutor()
        let preferred = try await PreferredExecutor.with(executor) {
            try await flights.run("on the queue") { QueueExecutor.isCurrent }
        }
        #expect(preferred)
        let plain = try await flights.run("anywhere") { QueueExecutor.isCurrent }
        #expect(!plain)
    }
}
