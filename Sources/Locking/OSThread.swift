import Glibc

/// Why no thread could be started, for errors and logs: `pthread_create`
/// fails with `EAGAIN` at a limit on tasks.
public let threadShortageExplanation =
    "no thread could be started: the process is at a limit on tasks (its control group's pids.max, or ulimit -u) or out of memory"

/// Starts a detached OS thread for bounded work, or runs `body` on the
/// calling thread when the system has no thread to give. Never for a loop
/// that runs as long as the process: inline, it would never return (use
/// `startThreadIfPossible` and say why it failed).
public func startThreadOrRunHere(stackSize: Int = 8 << 20, _ body: @escaping @Sendable () -> Void) {
    if !startThreadIfPossible(stackSize: stackSize, body) {
        body()
    }
}

/// Starts a detached OS thread with its own stack, or returns false (and
/// runs nothing) when the system has no thread to give.
public func startThreadIfPossible(stackSize: Int = 8 << 20, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setstacksize(&attributes, stackSize)
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread, &attributes,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
    pthread_attr_destroy(&attributes)
    guard result == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        return false
    }
    return true
}

/// Whether `count` more threads can run at once now: starts them, each
/// waiting until the last has started (or one failed), then ends them all.
/// A probe of the limits on tasks that cannot be read (`ulimit -u` counts
/// every process of the user).
public func canStartThreads(_ count: Int) -> Bool {
    final class Gate: @unchecked Sendable {
        let lock = ConditionLock()
        var open = false
        var ended = 0
    }
    let gate = Gate()
    var started = 0
    while started < count {
        let ok = startThreadIfPossible(stackSize: 64 << 10) {
            gate.lock.lock()
            while !gate.open { gate.lock.wait() }
            gate.ended += 1
            gate.lock.broadcast()
            gate.lock.unlock()
        }
        guard ok else { break }
        started += 1
    }
    gate.lock.lock()
    gate.open = true
    gate.lock.broadcast()
    while gate.ended < started { gate.lock.wait() }
    gate.lock.unlock()
    return started == count
}
