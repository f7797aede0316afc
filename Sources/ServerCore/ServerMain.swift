import Glibc
import Logging

/// The `ocirpc` command: parses settings, then serves stdin/stdout.
public enum ServerMain {
    /// Runs the command and returns its exit status: 0 after a clean end,
    /// 1 after `exit` without `shutdown`, 2 for a bad setting.
    public static func run(
        arguments: [String], environment: [String: String],
        extensions makeExtensions: (ServerConfiguration, Logger) -> [ServerExtension] = { _, _ in [] }
    ) -> Int32 {
        let configuration: ServerConfiguration
        do {
            switch try ConfigurationParser.parse(arguments: arguments, environment: environment) {
            case .help:
                print(ConfigurationParser.usage)
                return 0
            case .version:
                print("ocirpc \(ServerVersion.current) (protocol \(ServerVersion.protocolVersion))")
                return 0
            case .run(let parsed):
                configuration = parsed
            }
        } catch {
            let line = "ocirpc: \(error.message)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            return 2
        }
        let logger = Logger(level: configuration.logLevel, format: configuration.logFormat)
        let server = Server(
            configuration: configuration, logger: logger,
            extensions: makeExtensions(configuration, logger))
        logger.debug("serving on stdin/stdout", [("version", ServerVersion.current)])
        return server.run()
    }

    /// The process environment as a dictionary.
    public static var processEnvironment: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}
