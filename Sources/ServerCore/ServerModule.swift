import Logging
import Memory
import Options

/// A feature module as the command sees it: the options it reads, and how
/// it builds its extension once they are parsed, with the process's
/// logger and the memory budget of the calls in flight.
public struct ServerModule: Sendable {
    public var options: [CommandOption]
    /// Lines `--help` prints after the options.
    public var helpNotes: [String]
    public var makeExtension: @Sendable (ParsedOptions, Logger, MemoryBudget) -> ServerExtension

    public init(
        options: [CommandOption], helpNotes: [String] = [],
        makeExtension: @escaping @Sendable (ParsedOptions, Logger, MemoryBudget) -> ServerExtension
    ) {
        self.options = options
        self.helpNotes = helpNotes
        self.makeExtension = makeExtension
    }
}
