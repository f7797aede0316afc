/// The server's version and protocol version.
public enum ServerVersion {
    public static let current = "0.1.0"
    public static let protocolVersion = "1"
}
