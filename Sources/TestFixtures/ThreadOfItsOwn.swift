import Foundation

/// Runs `work`, which blocks (a read until end of file, a wait on a
/// semaphore), on a thread of its own and returns its result. Never on a
/// dispatch queue: on Linux the global queues are the threads every test's
/// tasks share (as many as there are cores), and a blocked one is replaced
/// only after a second or more. A few blocked at once stalled the whole
/// test process for 20 seconds.
public func onThreadOfItsOwn<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
