import JSON
import Memory

/// What shaping an answer from a document's text holds while it runs,
/// taken from the memory budget before any of it is held and given back
/// when the shaping is done: the text's tape (`JSONTape.maxHeldBytes`)
/// and the answer written twice over (its buffer, then the copy made of
/// it), at the bound the text's length sets (`Shapes.maxAnswerBytes(forText:)`,
/// `maxReferrersBytes`).
///
/// Each call is bounded on its own, but every thread shaping at once
/// holds that much: a 4 MiB manifest's tape and answer are tens of MiB,
/// and a host has as many threads as cores. A document of 64 KiB or less
/// (`MemoryBudget.uncountedValueBytes`) is not counted: its tape and
/// answer are at most a few MiB, one per thread at a time.
enum ShapingCharge {
    /// What shaping from a text of `textBytes` takes: its tape, and an
    /// answer of at most `answerBytes` written from it (0: none). Zero for
    /// a short text.
    static func bytes(forText textBytes: Int, answer answerBytes: Int) -> Int {
        guard textBytes > MemoryBudget.uncountedValueBytes else { return 0 }
        let tape = JSONTape.maxHeldBytes(forText: textBytes)
        let written = 2 * min(max(0, answerBytes), Shapes.maxAnswerBytes)
        return tape > Int.max - written ? Int.max : tape + written
    }

    /// What `body` returns, run with `bytes` taken from `memory` (nil: not
    /// counted) until it returns; throws `MemoryLimitExceeded` when the
    /// budget has not got them.
    static func holding<T>(_ bytes: Int, from memory: MemoryBudget?, _ body: () throws -> T) throws -> T {
        guard let memory, bytes > 0 else { return try body() }
        try memory.takeOrThrow(bytes)
        defer { memory.giveBack(bytes) }
        return try body()
    }
}
