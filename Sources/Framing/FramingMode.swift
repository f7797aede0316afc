/// How messages are delimited on stdin and stdout.
public enum FramingMode: String, Sendable {
    /// One JSON message per `\n`-terminated line (the default).
    case newlineDelimited = "ndjson"
    /// LSP style: `Content-Length: N\r\n\r\n` then N bytes.
    case contentLength = "content-length"

    /// Wraps one serialized message for the wire in this framing.
    public func frame(_ payload: [UInt8], into buffer: inout [UInt8]) {
        switch self {
        case .newlineDelimited:
            buffer.append(contentsOf: payload)
            buffer.append(0x0A)
        case .contentLength:
            buffer.append(contentsOf: "Content-Length: \(payload.count)\r\n\r\n".utf8)
            buffer.append(contentsOf: payload)
        }
    }
}
