import Dispatch
import Glibc
import JSON
import Locking
import Logging
import RPCDispatch
import Memory

/// `ocirpc [options] call METHOD [ARG...]`: one request, answered without
/// the stdio loop. Each ARG is a JSON value when it parses as one, else a
/// string; they are the positional params. The result goes to stdout as
/// JSON (indented when stdout is a terminal); an error goes to stderr as
/// one line, with nothing on stdout, and the exit status 1.
enum OneShotCall {
    static func run(
        method: String, arguments: [String], progress: Bool, memory: MemoryBudget, extensions: [ServerExtension],
        logger: Logger
    ) -> Int32 {
        var registry = MethodRegistry()
        for ext in extensions { registry.register(ext.methods) }
        // A batch with progress asks for partial results and puts the
        // successes together itself, as the batch's own answer would.
        let refs = arguments.count == 1 ? (try? JSONParser.parse(Array(arguments[0].utf8)))?.arrayValue : nil
        let streams = progress && method == "ec.oci.image_manifests" && refs != nil
        let total = Set((refs ?? []).compactMap(\.stringValue)).count
        let sink = AnswerSink(total: streams ? total : nil)
        let dispatcher = Dispatcher(
            registry: registry, sink: sink, memory: memory,
            onHandlerError: { method, error in
                logger.error("unexpected failure in a handler", [("method", method), ("error", "\(type(of: error))")])
            })
        var params = JSONValue.array(arguments.map { (try? JSONParser.parse(Array($0.utf8))) ?? .string($0) })
        if streams, let refs { params = ["refs": .array(refs), "partialResultToken": "call"] }
        let request: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]
        Array(request.jsonText.utf8).withUnsafeBytes { dispatcher.receive($0) }
        let answer = sink.waitForAnswer()
        if let error = answer["error"] {
            let code = error["code"]?.intValue.map(String.init) ?? "?"
            let reason = error["data"]?["reason"]?.stringValue ?? "?"
            let message = error["message"]?.stringValue ?? ""
            // The message may hold a registry's or an archive's words: their
            // line breaks and terminal escapes are written as `\u00XX`.
            writeLine(Logger.escapingControls("ocirpc: \(method) failed: \(code) \(reason): \(message)"), to: 2)
            return 1
        }
        let result = streams ? sink.streamedResult(order: refs ?? []) : answer["result"] ?? .null
        writeLine(isatty(1) != 0 ? Self.forTerminal(Self.indented(result)) : result.jsonText, to: 1)
        return 0
    }

    private static func writeLine(_ text: String, to fd: Int32) {
        _ = Array((text + "\n").utf8).withUnsafeBytes { writeAll(fd, $0) }
    }

    /// `json` with DEL and the C1 controls (U+007F-U+009F) escaped as
    /// `\u00XX`, for a terminal: JSON escapes the C0 controls already, and
    /// a terminal may take U+009B for an escape sequence's start. They can
    /// only be inside strings, where the escape means the same character.
    static func forTerminal(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { (0x7F...0x9F).contains($0.value) }) else { return json }
        var escaped = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            guard (0x7F...0x9F).contains(scalar.value) else {
                escaped.append(scalar)
                continue
            }
            let hex = String(scalar.value, radix: 16)
            escaped.append(contentsOf: "\\u00\(hex)".unicodeScalars)
        }
        return String(escaped)
    }

    /// `value` as JSON with two-space indentation, for people.
    static func indented(_ value: JSONValue, depth: Int = 0) -> String {
        let pad = String(repeating: "  ", count: depth + 1)
        let end = String(repeating: "  ", count: depth)
        switch value {
        case .encoded(let text):
            return indented(text.value, depth: depth)
        case .array(let items) where !items.isEmpty:
            return "[\n" + items.map { pad + indented($0, depth: depth + 1) }.joined(separator: ",\n") + "\n" + end
                + "]"
        case .object(let object) where !object.members.isEmpty:
            let members = object.members.map {
                pad + JSONValue.string($0.key).jsonText + ": " + indented($0.value, depth: depth + 1)
            }
            return "{\n" + members.joined(separator: ",\n") + "\n" + end + "}"
        default:
            return value.jsonText
        }
    }
}

/// Keeps the one response the dispatcher writes, and for a streamed
/// batch the manifests of its progress notifications, counting them on
/// stderr as `n/total`.
private final class AnswerSink: MessageSink, @unchecked Sendable {
    private let answered = DispatchSemaphore(value: 0)
    private let answer = Locked<JSONValue?>(nil)
    private let total: Int?
    private let streamed = Locked<(count: Int, manifests: [String: JSONValue])>((0, [:]))

    init(total: Int?) { self.total = total }

    func send(_ message: [UInt8]) {
        guard let value = try? JSONParser.parse(message, maxDepth: JSONParser.answerMaxDepth) else {
            // Not expected; but a message that cannot be read must not
            // leave the call waiting for ever.
            answer.withLock {
                $0 = [
                    "error": ["code": -32603, "message": "an answer could not be read", "data": ["reason": "internal"]]
                ]
            }
            answered.signal()
            return
        }
        if let total, value["method"] == "$/progress", let entry = value["params"]?["value"],
            let ref = entry["ref"]?.stringValue
        {
            let count = streamed.withLock { state in
                state.count += 1
                if let manifest = entry["manifest"] { state.manifests[ref] = manifest }
                return state.count
            }
            let line = "\r\(count)/\(total)" + (count == total ? "\n" : "")
            _ = line.withCString { write(2, $0, strlen($0)) }
            return
        }
        guard value["id"] != nil else { return }
        answer.withLock { $0 = value }
        answered.signal()
    }

    /// The successes of a streamed batch, in the order the refs were given.
    func streamedResult(order: [JSONValue]) -> JSONValue {
        let manifests = streamed.withLock { $0.manifests }
        var result = JSONObject()
        var written: Set<String> = []
        for ref in order.compactMap(\.stringValue) where written.insert(ref).inserted {
            if let manifest = manifests[ref] { result.append(ref, manifest) }
        }
        return .object(result)
    }

    func waitForAnswer() -> JSONValue {
        answered.wait()
        return answer.withLock { $0 } ?? .null
    }
}
