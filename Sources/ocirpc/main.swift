import Glibc
import ServerCore

exit(ServerMain.run(
    arguments: Array(CommandLine.arguments.dropFirst()),
    environment: ServerMain.processEnvironment))
