import Glibc
import OCIMethods
import ServerCore

ServerMain.prepareStacks()
exit(
    ServerMain.run(
        arguments: Array(CommandLine.arguments.dropFirst()),
        environment: ServerMain.processEnvironment,
        modules: [OCIMethods.module]))
