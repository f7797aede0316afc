/// Where encoded outgoing messages go (the output writer, or a test).
public protocol MessageSink: Sendable {
    /// Sends one complete serialized message.
    func send(_ message: [UInt8])

    /// Returns once there is room for more: what was sent and not yet
    /// taken by the client is under the sink's mark (or the task is
    /// cancelled). For tasks that stream many messages.
    func waitForRoom() async
}

extension MessageSink {
    /// A sink that never fills has room at once.
    public func waitForRoom() async {}
}
