/// A setting that could not be used; the process exits 2 with `message`.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
