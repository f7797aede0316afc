import Glibc

/// Starts a detached OS thread with its own (large) stack.
public func startThread(stackSize: Int = 8 << 20, _ body: @escaping @Sendable () -> Void) {
    if !startThreadIfPossible(stackSize: stackSize, body) {
        // Could not start a thread: run inline rather than lose the work.
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
