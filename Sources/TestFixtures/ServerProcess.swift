import Foundation
import JSON

/// The built `ocirpc` binary, run as a child process the way clients run it.
public final class ServerProcess: @unchecked Sendable {
    public static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["OCIRPC_BINARY"] { return URL(fileURLWithPath: path) }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("ocirpc")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return FixturePaths.packageRoot.appendingPathComponent(".build/debug/ocirpc")
    }

    public let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSLock()
    private var outBuffer = Data()
    /// Messages parsed so far, and how far into `outBuffer` they reach:
    /// each line is parsed once, however often tests poll.
    private var parsedMessages: [JSONValue] = []
    private var parsedUpTo = 0
    /// Where the search for the next newline resumes: a long line that
    /// is still arriving is not searched again from its start at every
    /// poll (which cost the shared task pool seconds on large answers).
    private var searchedUpTo = 0
    private var outputFinished = false
    private var errBuffer = Data()
    private let outputEnded = DispatchSemaphore(value: 0)
    private let errorEnded = DispatchSemaphore(value: 0)
    private var outputClosed = false

    /// - Parameters:
    ///   - closeOutput: start with our end of the server's stdout closed,
    ///     as a client that never reads would.
    ///   - launcher: a command that runs the binary (passed as its
    ///     arguments), as `unshare` runs it in a namespace of its own.
    public init(
        _ arguments: [String] = [], environment: [String: String] = [:], closeOutput: Bool = false,
        launcher: [String] = []
    ) throws {
        // Writing to a server that has exited must fail, not kill the tests.
        ignoreBrokenPipes()
        if let command = launcher.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = launcher.dropFirst() + [Self.binary.path] + arguments
        } else {
            process.executableURL = Self.binary
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        // Each test starts from nothing on disk unless it names a cache
        // directory: registries on reused ports must not share answers.
        env["OCIRPC_CACHE_DIR"] = "none"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        // Blocking reads on threads of their own: FileHandle's readability
        // handler was seen to lose the end of the stream on Linux.
        let outFD = stdoutPipe.fileHandleForReading.fileDescriptor
        let errFD = stderrPipe.fileHandleForReading.fileDescriptor
        if closeOutput {
            outputClosed = true
            try stdoutPipe.fileHandleForReading.close()
        } else {
            Thread.detachNewThread { [self] in
                drain(outFD) { data in lock.withLock { outBuffer.append(data) } }
                lock.withLock { outputFinished = true }
                outputEnded.signal()
            }
        }
        Thread.detachNewThread { [self] in
            drain(errFD) { data in lock.withLock { errBuffer.append(data) } }
            errorEnded.signal()
        }
    }

    private func drain(_ fd: Int32, _ append: (Data) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            append(Data(buffer[0..<n]))
        }
    }

    public func send(_ text: String) { send(bytes: Data(text.utf8)) }

    public func send(bytes: Data) {
        try? stdinPipe.fileHandleForWriting.write(contentsOf: bytes)
    }

    public func sendLine(_ text: String) { send(text + "\n") }

    public func closeInput() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// Whether the server's output has ended (it closed it, or exited).
    public var outputHasEnded: Bool { lock.withLock { outputFinished } }

    public var stdout: Data { lock.withLock { outBuffer } }
    public var stderr: String { lock.withLock { String(decoding: errBuffer, as: UTF8.self) } }

    /// The newline-delimited messages written so far.
    /// A last line without its newline counts once the output has ended.
    public var messages: [JSONValue] {
        lock.withLock {
            func parse(_ line: Data) -> JSONValue {
                (try? JSONParser.parse(Array(line), maxDepth: JSONParser.answerMaxDepth))
                    ?? .string("unparseable: \(String(decoding: line, as: UTF8.self))")
            }
            while let newline = outBuffer[max(parsedUpTo, searchedUpTo)...].firstIndex(of: 10) {
                let line = outBuffer[parsedUpTo..<newline]
                if !line.isEmpty { parsedMessages.append(parse(line)) }
                parsedUpTo = newline + 1
            }
            searchedUpTo = outBuffer.endIndex
            let tail = outBuffer[parsedUpTo...]
            return outputFinished && !tail.isEmpty ? parsedMessages + [parse(tail)] : parsedMessages
        }
    }

    // Waiting is async and polls with Task.sleep: a blocked test would hold
    // one of the few threads that every other test's tasks need.

    /// Waits until `count` newline-delimited messages arrived.
    public func waitForMessages(_ count: Int, seconds: Double = 120) async -> [JSONValue] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let current = messages
            if current.count >= count { return current }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return messages
    }

    /// Waits for exit and returns the status, or nil if it did not exit in time.
    public func waitForExit(seconds: Double = 120) async -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(2)) }
        if process.isRunning {
            process.terminate()
            return nil
        }
        let streams = outputClosed ? [errorEnded] : [outputEnded, errorEnded]
        for semaphore in streams {
            var tries = 0
            while semaphore.wait(timeout: .now()) != .success && tries < 2500 {
                tries += 1
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        return process.terminationStatus
    }

    /// Runs the binary to completion with `input` on stdin.
    public static func run(_ arguments: [String], input: String = "", environment: [String: String] = [:]) async throws
        -> (status: Int32?, stdout: String, stderr: String)
    {
        let p = try ServerProcess(arguments, environment: environment)
        p.send(input)
        p.closeInput()
        let status = await p.waitForExit()
        return (status, String(decoding: p.stdout, as: UTF8.self), p.stderr)
    }
}
