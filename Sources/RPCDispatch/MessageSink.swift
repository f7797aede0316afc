/// Where encoded outgoing messages go (the output writer, or a test).
public protocol MessageSink: Sendable {
    /// Sends one complete serialized message.
    func send(_ message: [UInt8])
}
