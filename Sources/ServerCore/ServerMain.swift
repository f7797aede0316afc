import CSystem
import Glibc
import Logging
import Options
import Memory

/// The `ocirpc` command: parses settings, then serves stdin/stdout.
public enum ServerMain {
    /// Gives the main thread's stack, and the stacks of libdispatch's
    /// threads, room (`ThreadStacks`): the first thing `main` does, before
    /// anything else runs on its stack.
    public static func prepareStacks() { ThreadStacks.raise() }

    /// Runs the command with `modules` and returns its exit status: 0 after
    /// a clean end, 1 after `exit` without `shutdown`, 2 for a bad setting
    /// or a system it cannot run on (no `/proc`).
    public static func run(arguments: [String], environment: [String: String], modules: [ServerModule]) -> Int32 {
        openClosedStandardStreams()
        DescriptorReserve.raiseLimit()
        let parsed: ParsedOptions
        var call: (method: String, arguments: [String], progress: Bool)?
        do {
            switch try ServerCommand.parse(arguments: arguments, environment: environment, modules: modules) {
            case .help:
                print(ServerCommand.usage(modules))
                return 0
            case .version:
                print("ocirpc \(ServerVersion.current) (protocol \(ServerVersion.protocolVersion))")
                return 0
            case .run(let options):
                parsed = options
            case .call(let options, let method, let arguments, let progress):
                parsed = options
                call = (method, arguments, progress)
            }
        } catch {
            let line = "ocirpc: \(error.message)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            return 2
        }
        if let problem = threadPoolProblem() ?? TaskHeadroom.problem() ?? AddressSpaceLimit.problem()
            ?? DataLimit.problem()
        {
            let line = "ocirpc: \(problem)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            return 2
        }
        let options = parsed[ServerOptions.self]
        let logger = Logger(level: options.logLevel, format: options.logFormat)
        // One budget for everything the calls in flight hold: what the
        // dispatcher and writer count, and the bodies the modules fetch.
        let memory = MemoryBudget(limit: options.maxMemoryBytes)
        // What the budget gives back goes back to the system: a large block
        // freed is unmapped, not kept by malloc for later (which would let
        // the process hold twice its budget: bench/README.md, "memory").
        _ = ocirpc_map_allocations_from(MemoryBudget.mappedAllocationBytes)
        let extensions = modules.map { $0.makeExtension(parsed, logger, memory) }
        if let call {
            return OneShotCall.run(
                method: call.method, arguments: call.arguments, progress: call.progress || isatty(2) != 0,
                memory: memory, extensions: extensions, logger: logger)
        }
        if isatty(0) != 0 {
            logger.info(
                "reading JSON-RPC requests on stdin, one per line; see ocirpc --help, or run one with: ocirpc call METHOD ARG..."
            )
        }
        let server = Server(
            options: options, logger: logger, extensions: extensions, memory: memory, output: protocolOutput(logger))
        logger.debug("serving on stdin/stdout", [("version", ServerVersion.current)])
        let code = server.run()
        // The process exits next, and takes the session's memory with it:
        // released here, the caches would free their entries one by one
        // first (2.5% of the instructions of a 1,000-manifest batch).
        _ = Unmanaged.passRetained(server)
        return code
    }

    /// Opens `/dev/null` on each of descriptors 0, 1 and 2 that the process
    /// was started without. Otherwise the first files opened take them: a
    /// server started with stderr closed wrote its log into the disk
    /// cache's lock file, one started with stdout closed its answers.
    static func openClosedStandardStreams() {
        for fd: Int32 in 0...2 where fcntl(fd, F_GETFD) == -1 && errno == EBADF {
            let opened = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY)
            if opened >= 0 && opened != fd {
                dup2(opened, fd)
                close(opened)
            }
        }
    }

    /// Why the thread pool cannot run here, or nil. libdispatch watches its
    /// worker threads through `/proc/<tid>/stat` each second and stops the
    /// process when it cannot open one: a server without `/proc` died at
    /// random (SIGILL, two runs in three), where it now says why at start.
    static func threadPoolProblem() -> String? {
        let path = "/proc/\(ocirpc_thread_id())/stat"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            return
                "cannot open \(path) (errno \(errno)): the thread pool watches its threads through /proc, which must be mounted"
        }
        close(fd)
        return nil
    }

    /// The descriptor the protocol is written to: stdout, moved to a
    /// descriptor of its own (close-on-exec), with descriptor 1 pointed at
    /// stderr. Whatever else in the process writes to "stdout" (a library's
    /// default, a program it runs that inherits it) then writes to stderr,
    /// never into the stream of JSON-RPC messages. Stdout itself when it
    /// cannot be moved.
    static func protocolOutput(_ logger: Logger) -> Int32 {
        let moved = fcntl(1, F_DUPFD_CLOEXEC, 3)
        guard moved >= 0 else {
            logger.warn("stdout could not be set apart; writing to it as it is", [("errno", String(errno))])
            return 1
        }
        guard dup2(2, 1) == 1 else {
            logger.warn("stdout could not be pointed at stderr", [("errno", String(errno))])
            close(moved)
            return 1
        }
        return moved
    }

    /// The process environment as a dictionary.
    public static var processEnvironment: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            // Split on the first "=" byte: a search by Character would break
            // the whole entry into grapheme clusters first.
            let text = String(cString: entry).utf8
            if let equals = text.firstIndex(of: UInt8(ascii: "=")) {
                result[String(decoding: text[..<equals], as: UTF8.self)] = String(
                    decoding: text[text.index(after: equals)...], as: UTF8.self)
            }
            pointer += 1
        }
        return result
    }
}
