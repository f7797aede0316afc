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
        var out: [UInt8] = []
        out.reserveCapacity(64)
        out.append(contentsOf: resultPrefix)
        JSONWriter.write(id.json, into: &out)
        out.append(contentsOf: resultMiddle)
        JSONWriter.write(result, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// An error response.
    public static func error(id: RequestID, _ error: RPCError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(contentsOf: resultPrefix)
        JSONWriter.write(id.json, into: &out)
        out.append(contentsOf: errorMiddle)
        JSONWriter.write(error.json, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A notification.
    public static func notification(method: String, params: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(contentsOf: notificationPrefix)
        JSONWriter.writeString(method, into: &out)
        out.append(contentsOf: paramsMiddle)
        JSONWriter.write(params, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
