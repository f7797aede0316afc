import Logging
import Options

/// A feature module as the command sees it: the options it reads, and how
/// it builds its extension once they are parsed.
public struct ServerModule: Sendable {
    public var options: [CommandOption]
    /// Lines `--help` prints after the options.
    public var helpNotes: [String]
    public var makeExtension: @Sendable (ParsedOptions, Logger) -> ServerExtension

    public init(
        options: [CommandOption], helpNotes: [String] = [],
        makeExtension: @escaping @Sendable (ParsedOptions, Logger) -> ServerExtension
    ) {
        self.options = options
        self.helpNotes = helpNotes
        self.makeExtension = makeExtension
    }
}
