import Glibc
import OCIMethods
import ServerCore

exit(ServerMain.run(
    arguments: Array(CommandLine.arguments.dropFirst()),
    environment: ServerMain.processEnvironment,
    extensions: { configuration, logger in
        [OCIMethods.makeExtension(configuration: configuration, logger: logger)]
    }))
