import JSON

/// Builds the bytes of outgoing JSON-RPC messages directly, without an
/// intermediate object for the envelope.
public enum MessageEncoding {
    private static let resultPrefix = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
    private static let resultMiddle = Array(#","result":"#.utf8)
    private static let errorMiddle = Array(#","error":"#.utf8)
    private static let notificationPrefix = Array(#"{"jsonrpc":"2.0","method":"#.utf8)
    private static let paramsMiddle = Array(#","params":"#.utf8)

    /// A success response.
    public static func result(id: RequestID, _ result: JSONValue) -> [UInt8] {
        var out = OutputBytes(capacity: 256)
        out.append(resultPrefix)
        JSONWriter.write(id.json, into: &out)
        out.append(resultMiddle)
        JSONWriter.write(result, into: &out)
        out.append(UInt8(ascii: "}"))
        return out.array()
    }

    /// An error response.
    public static func error(id: RequestID, _ error: RPCError) -> [UInt8] {
        var out = OutputBytes(capacity: 256)
        out.append(resultPrefix)
        JSONWriter.write(id.json, into: &out)
        out.append(errorMiddle)
        JSONWriter.write(error.json, into: &out)
        out.append(UInt8(ascii: "}"))
        return out.array()
    }

    /// A notification.
    public static func notification(method: String, params: JSONValue) -> [UInt8] {
        var out = OutputBytes(capacity: 256)
        out.append(notificationPrefix)
        JSONWriter.writeString(method, into: &out)
        out.append(paramsMiddle)
        JSONWriter.write(params, into: &out)
        out.append(UInt8(ascii: "}"))
        return out.array()
    }
}
