/// A setting that could not be used; the process exits 2 with `message`.
package struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    package let message: String
    package init(message: String) { self.message = message }
    package var description: String { message }
}
