import Memory
import Testing

@Suite struct MemoryBudgetTests {
    @Test func aTakeThatWouldPassTheLimitIsRefusedAndTakesNothing() {
        let budget = MemoryBudget(limit: 100)
        #expect(budget.take(60))
        #expect(!budget.take(41))
        #expect(budget.heldBytes == 60)
        #expect(budget.take(40))
        #expect(budget.heldBytes == 100)
        budget.giveBack(100)
        #expect(budget.heldBytes == 0)
    }

    @Test func takesThatWouldOverflowAreRefused() {
        let budget = MemoryBudget(limit: .max)
        #expect(budget.take(.max - 1))
        #expect(!budget.take(.max))
        #expect(budget.heldBytes == .max - 1)
    }

    @Test func whatIsAddedCountsPastTheLimitAndLaterTakesSeeIt() {
        let budget = MemoryBudget(limit: 100)
        budget.add(150)
        #expect(budget.heldBytes == 150)
        #expect(!budget.take(1))
        budget.giveBack(150)
        #expect(budget.take(100))
    }

    @Test func aShareGivesBackAllItTookWhenItGoesAway() throws {
        let budget = MemoryBudget(limit: 1000)
        do {
            let share = MemoryShare(of: budget)
            try share.take(300)
            try share.take(200)
            share.giveBack(100)
            #expect(share.heldBytes == 400)
            #expect(budget.heldBytes == 400)
            #expect(throws: MemoryLimitExceeded(limit: 1000, asked: 601)) { try share.take(601) }
            #expect(share.heldBytes == 400)
        }
        #expect(budget.heldBytes == 0)
    }

    @Test func theShareOfATaskIsTheOneBoundForIt() async {
        let budget = MemoryBudget(limit: 1000)
        #expect(MemoryShare.current == nil)
        let share = MemoryShare(of: budget)
        let seen = await MemoryShare.$current.withValue(share) {
            await Task { MemoryShare.current }.value
        }
        #expect(seen === share)
    }

    @Test func concurrentTakesNeverHoldMoreThanTheLimit() async {
        let budget = MemoryBudget(limit: 10_000)
        let granted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    var granted = 0
                    for _ in 0..<1000 where budget.take(7) { granted += 7 }
                    return granted
                }
            }
            return await group.reduce(0, +)
        }
        #expect(granted == budget.heldBytes)
        #expect(granted <= 10_000)
        #expect(granted > 10_000 - 7)
    }

    /// A refusal names the limit in a unit that reads: a budget under 1 MiB
    /// is not "0 MiB".
    @Test func aLimitReadsInTheLargestUnitThatKeepsItAtLeastOne() {
        #expect(readableByteCount(0) == "0 B")
        #expect(readableByteCount(1023) == "1023 B")
        #expect(readableByteCount(256 << 10) == "256 KiB")
        #expect(readableByteCount((1 << 20) + 1) == "1 MiB")
        #expect(readableByteCount(2 << 30) == "2 GiB")
        #expect(readableByteCount(Int.max) == "8388607 TiB")
        #expect(MemoryLimitExceeded(limit: 256 << 10, asked: 1).message.contains("more than 256 KiB together"))
    }
}
