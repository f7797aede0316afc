import Foundation
import Locking
import Memory
import Testing

@testable import OCIMethods

/// Work handed to another thread lets go of what it captured before its
/// result is told: a caller that answers at once holds nothing back.
@Suite struct HandedOverWorkTests {
    /// Something captured by the work that says when it goes.
    final class Captured: Sendable {
        let gone: Locked<Bool>
        init(_ gone: Locked<Bool>) { self.gone = gone }
        deinit { gone.withLock { $0 = true } }
    }

    @Test func whatTheWorkCapturedIsGoneWhenItsResultIsTold() throws {
        let gone = Locked(false)
        var handedOver: HandedOverWork<Int>?
        do {
            let captured = Captured(gone)
            handedOver = HandedOverWork(nil) { captured.gone.withLock { $0 } ? 1 : 2 }
        }
        #expect(!gone.withLock { $0 }, "the box holds the work until it runs")
        let result = try #require(handedOver).run()
        #expect(try result.get() == 2)
        #expect(gone.withLock { $0 }, "the work and its captures are let go before run returns")
        #expect(throws: CancellationError.self) { try handedOver?.run().get() }
    }

    @Test func theWorkRunsWithTheSharePassedAlong() throws {
        let budget = MemoryBudget(limit: 1 << 20)
        let share = MemoryShare(of: budget)
        let seen = HandedOverWork(share) { MemoryShare.current === share }.run()
        #expect(try seen.get())
    }
}
