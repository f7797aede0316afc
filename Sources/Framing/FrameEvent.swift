/// What the framer found in the input stream.
public enum FrameEvent {
    /// The framing of the stream, reported once before the first message.
    case mode(FramingMode)
    /// One complete message. The bytes are valid only during the callback.
    case message(UnsafeRawBufferPointer)
    /// A message longer than the limit was skipped. `size` is how many bytes
    /// were seen when the limit was crossed (or the declared length).
    case tooLarge(size: Int)
    /// A frame that could not be read (a bad header, or end of input in the
    /// middle of a message). The stream goes on after it.
    case invalidFrame(reason: String)
}
