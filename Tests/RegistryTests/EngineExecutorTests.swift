import Reasons
import Foundation
import Testing
import TestFixtures
@testable import Registry

/// The HTTP engine as a task executor: tasks that prefer it run on its one
/// thread, before and after their requests.
@Suite struct EngineExecutorTests {
    private let transport = HTTPTransport(
        settings: HTTPTransport.Settings(), logger: .disabled, counters: RegistryCounters())

    /// The threads `count` concurrent tasks ran on around five requests each,
    /// and the statuses they got.
    private func threadsAroundRequests(
        to server: TestHTTPServer, tasks count: Int
    ) async -> (threads: Set<UInt>, statuses: [Int]) {
        await withTaskGroup(of: ([UInt], [Int]).self) { group in
            for _ in 0..<count {
                group.addTask { [transport] in
                    var threads: [UInt] = [], statuses: [Int] = []
                    for _ in 0..<5 {
                        threads.append(UInt(pthread_self()))
                        let response = try? await transport.send(HTTPRequest(url: server.baseURL + "/v2/"), kind: .ping)
                        statuses.append(response?.status ?? 0)
                        threads.append(UInt(pthread_self()))
                    }
                    return (threads, statuses)
                }
            }
            var threads = Set<UInt>(), statuses: [Int] = []
            for await (seen, got) in group {
                threads.formUnion(seen)
                statuses += got
            }
            return (threads, statuses)
        }
    }

    @Test func tasksPreferringTheEngineRunOnItsThreadAcrossRequests() async throws {
        let server = try TestHTTPServer { _ in .response(status: 200, headers: [], body: Array("{}".utf8)) }
        defer { server.stop() }
        let onEngine = await withTaskExecutorPreference(transport.taskExecutor) {
            await threadsAroundRequests(to: server, tasks: 4)
        }
        #expect(onEngine.statuses == Array(repeating: 200, count: 20))
        #expect(onEngine.threads.count == 1)
        // Without the preference, tasks run on the shared pool, never on the engine's thread.
        let onPool = await threadsAroundRequests(to: server, tasks: 4)
        #expect(onPool.statuses == Array(repeating: 200, count: 20))
        #expect(onPool.threads.isDisjoint(with: onEngine.threads))
    }

    @Test func aCancelledTaskOnTheEngineGetsCancelledWithoutStallingTheOthers() async throws {
        // The slow answer is held until the test has seen the cancelled call
        // fail and the fast one answered: neither waited for it (no clock is
        // read; a broken cancel gets the held 200 after 60 s and fails).
        let held = DispatchSemaphore(value: 0)
        let server = try TestHTTPServer { request in
            if request.path == "/slow" { _ = held.wait(timeout: .now() + 60) }
            return .response(status: 200, headers: [], body: [])
        }
        defer { server.stop() }
        await withTaskExecutorPreference(transport.taskExecutor) {
            let slow = Task(executorPreference: transport.taskExecutor) { [transport] in
                try await transport.send(HTTPRequest(url: server.baseURL + "/slow"), kind: .ping)
            }
            try? await Task.sleep(for: .milliseconds(100))
            slow.cancel()
            let error = await #expect(throws: RegistryError.self) { _ = try await slow.value }
            #expect(error?.reason == .cancelled)
            let fast = try? await transport.send(HTTPRequest(url: server.baseURL + "/fast"), kind: .ping)
            #expect(fast?.status == 200)
        }
        held.signal()
    }
}
