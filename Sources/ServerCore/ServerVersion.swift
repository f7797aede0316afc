/// The server's version and protocol version.
package enum ServerVersion {
    package static let current = "0.1.0"
    package static let protocolVersion = "1"
}
