import Logging
import Memory
import Options

/// A feature module as the command sees it: the options it reads, and how
/// it builds its extension once they are parsed, with the process's
/// logger and the memory budget of the calls in flight.
package struct ServerModule: Sendable {
    package var options: [CommandOption]
    /// Lines `--help` prints after the options.
    package var helpNotes: [String]
    package var makeExtension: @Sendable (ParsedOptions, Logger, MemoryBudget) -> ServerExtension

    package init(
        options: [CommandOption], helpNotes: [String] = [],
        makeExtension: @escaping @Sendable (ParsedOptions, Logger, MemoryBudget) -> ServerExtension
    ) {
        self.options = options
        self.helpNotes = helpNotes
        self.makeExtension = makeExtension
    }
}
