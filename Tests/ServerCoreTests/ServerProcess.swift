import Foundation
import JSON

/// The built `ocirpc` binary, run as a child process the way clients run it.
final class ServerProcess: @unchecked Sendable {
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["OCIRPC_BINARY"] { return URL(fileURLWithPath: path) }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("ocirpc")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return OpenRPCContract.packageRoot.appendingPathComponent(".build/debug/ocirpc")
    }

    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSLock()
    private var outBuffer = Data()
    private var errBuffer = Data()
    private let outputEnded = DispatchSemaphore(value: 0)
    private var outputClosed = false

    init(_ arguments: [String] = [], environment: [String: String] = [:]) throws {
        process.executableURL = Self.binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            if data.isEmpty {
                handle.readabilityHandler = nil
                self.outputEnded.signal()
            } else {
                self.lock.withLock { self.outBuffer.append(data) }
            }
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil; return }
            self?.lock.withLock { self?.errBuffer.append(data) }
        }
        try process.run()
    }

    func send(_ text: String) {
        stdinPipe.fileHandleForWriting.write(Data(text.utf8))
    }

    func sendLine(_ text: String) { send(text + "\n") }

    /// Closes our end of the server's stdout, as a client that stops
    /// reading would.
    func closeOutput() throws {
        outputClosed = true
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        try stdoutPipe.fileHandleForReading.close()
    }

    func closeInput() {
        try? stdinPipe.fileHandleForWriting.close()
    }

    var stdout: Data { lock.withLock { outBuffer } }
    var stderr: String { lock.withLock { String(decoding: errBuffer, as: UTF8.self) } }

    /// The newline-delimited messages written so far.
    var messages: [JSONValue] {
        String(decoding: stdout, as: UTF8.self).split(separator: "\n").map {
            (try? JSONParser.parse(String($0))) ?? .string("unparseable: \($0)")
        }
    }

    /// Waits until `count` newline-delimited messages arrived.
    func waitForMessages(_ count: Int, seconds: Double = 20) -> [JSONValue] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let current = messages
            if current.count >= count { return current }
            usleep(2000)
        }
        return messages
    }

    /// Waits for exit and returns the status, or nil if it did not exit in time.
    func waitForExit(seconds: Double = 20) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(2000) }
        if process.isRunning {
            process.terminate()
            return nil
        }
        if !outputClosed { _ = outputEnded.wait(timeout: .now() + 5) }
        return process.terminationStatus
    }

    /// Runs the binary to completion with `input` on stdin.
    static func run(_ arguments: [String], input: String = "", environment: [String: String] = [:]) throws
        -> (status: Int32?, stdout: String, stderr: String)
    {
        let p = try ServerProcess(arguments, environment: environment)
        p.send(input)
        p.closeInput()
        let status = p.waitForExit()
        return (status, String(decoding: p.stdout, as: UTF8.self), p.stderr)
    }
}
