import Glibc

/// Splits an incoming byte stream into messages, incrementally.
///
/// Feed it whatever `read(2)` returned; it calls back once per complete
/// message, zero-copy when a message lies within one chunk. The framing is
/// detected from the first non-blank byte: `C`/`c` (a `Content-Length`
/// header) selects LSP framing, anything else newline-delimited JSON.
/// Messages over `maxMessageBytes` are reported as `.tooLarge` and skipped
/// without being held in memory.
public struct MessageFramer {
    public let maxMessageBytes: Int
    /// The detected framing; nil until the first non-blank byte arrives.
    public private(set) var mode: FramingMode?

    private var pending: [UInt8] = []
    private var discarding = false
    private var lsp = LSPState.headers
    private static let maxHeaderBytes = 8192

    private enum LSPState {
        case headers
        case body(length: Int)
        case skipping(remaining: Int)
    }

    public init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Consumes one chunk of input.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ emit: (FrameEvent) -> Void) {
        var chunk = chunk
        if mode == nil {
            guard let first = chunk.firstIndex(where: { !Self.isBlank($0) }) else { return }
            let detected: FramingMode =
                (chunk[first] == UInt8(ascii: "C") || chunk[first] == UInt8(ascii: "c"))
                ? .contentLength : .newlineDelimited
            mode = detected
            emit(.mode(detected))
            chunk = UnsafeRawBufferPointer(rebasing: chunk[first...])
        }
        switch mode! {
        case .newlineDelimited: feedLines(chunk, emit)
        case .contentLength: feedContentLength(chunk, emit)
        }
    }

    /// Signals end of input: a final unterminated line is still a message;
    /// a partial Content-Length frame is reported as invalid.
    public mutating func finish(_ emit: (FrameEvent) -> Void) {
        switch mode {
        case .newlineDelimited?:
            if !discarding && !pending.isEmpty {
                emitLine(&pending, emit)
            }
        case .contentLength?:
            switch lsp {
            case .headers:
                if pending.contains(where: { !Self.isBlank($0) }) {
                    emit(.invalidFrame(reason: "end of input inside a frame header"))
                }
            case .body:
                emit(.invalidFrame(reason: "end of input inside a message body"))
            case .skipping:
                break
            }
        case nil:
            break
        }
        pending = []
        discarding = false
        lsp = .headers
    }

    // MARK: newline-delimited

    private mutating func feedLines(_ chunk: UnsafeRawBufferPointer, _ emit: (FrameEvent) -> Void) {
        guard let base = chunk.baseAddress else { return }
        var start = 0
        let count = chunk.count
        while start < count {
            let rest = count - start
            guard let found = memchr(base + start, 0x0A, rest) else {
                // No newline: keep the tail for the next chunk.
                if discarding { return }
                if pending.count + rest > maxMessageBytes {
                    emit(.tooLarge(size: pending.count + rest))
                    pending = []
                    discarding = true
                    return
                }
                pending.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: rest))
                return
            }
            let end = base.distance(to: UnsafeRawPointer(found))
            let lineLength = end - start
            defer { start = end + 1 }
            if discarding {
                discarding = false
                continue
            }
            if pending.count + lineLength > maxMessageBytes {
                emit(.tooLarge(size: pending.count + lineLength))
                pending.removeAll(keepingCapacity: false)
                continue
            }
            if pending.isEmpty {
                var line = UnsafeRawBufferPointer(start: base + start, count: lineLength)
                if let last = line.last, last == 0x0D {
                    line = UnsafeRawBufferPointer(rebasing: line.dropLast())
                }
                if !line.allSatisfy(Self.isBlank) { emit(.message(line)) }
            } else {
                pending.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: lineLength))
                emitLine(&pending, emit)
            }
        }
    }

    private func emitLine(_ line: inout [UInt8], _ emit: (FrameEvent) -> Void) {
        if line.last == 0x0D { line.removeLast() }
        if !line.allSatisfy(Self.isBlank) {
            line.withUnsafeBytes { emit(.message($0)) }
        }
        line.removeAll(keepingCapacity: line.capacity <= 1 << 20)
    }

    // MARK: Content-Length

    private mutating func feedContentLength(
        _ chunk: UnsafeRawBufferPointer, _ emit: (FrameEvent) -> Void
    ) {
        var rest = chunk
        while !rest.isEmpty {
            switch lsp {
            case .headers:
                if pending.isEmpty, let first = rest.firstIndex(where: { !Self.isBlank($0) }) {
                    rest = UnsafeRawBufferPointer(rebasing: rest[first...])
                } else if pending.isEmpty {
                    return
                }
                // Look for the blank line that ends the header block.
                let before = pending.count
                pending.append(contentsOf: rest)
                guard let headerEnd = Self.headerTerminator(in: pending, from: max(0, before - 3)) else {
                    if pending.count > Self.maxHeaderBytes {
                        emit(.invalidFrame(reason: "frame header longer than \(Self.maxHeaderBytes) bytes"))
                        pending = []
                    }
                    return
                }
                let consumed = headerEnd.bodyStart - before
                rest = UnsafeRawBufferPointer(rebasing: rest[(rest.startIndex + consumed)...])
                let header = pending[0..<headerEnd.headerEnd]
                pending.removeAll(keepingCapacity: true)
                switch Self.contentLength(ofHeader: header) {
                case .failure(let failure):
                    emit(.invalidFrame(reason: failure.reason))
                case .success(let length) where length > maxMessageBytes:
                    emit(.tooLarge(size: length))
                    lsp = .skipping(remaining: length)
                case .success(let length):
                    lsp = .body(length: length)
                    if length == 0 {
                        lsp = .headers
                        emit(.invalidFrame(reason: "empty message body"))
                    }
                }
            case .body(let length):
                let need = length - pending.count
                if pending.isEmpty && rest.count >= length {
                    emit(.message(UnsafeRawBufferPointer(rebasing: rest.prefix(length))))
                    rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(length))
                    lsp = .headers
                } else if rest.count >= need {
                    pending.append(contentsOf: rest.prefix(need))
                    rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(need))
                    pending.withUnsafeBytes { emit(.message($0)) }
                    pending.removeAll(keepingCapacity: pending.capacity <= 1 << 20)
                    lsp = .headers
                } else {
                    pending.append(contentsOf: rest)
                    return
                }
            case .skipping(let remaining):
                if rest.count >= remaining {
                    rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(remaining))
                    lsp = .headers
                } else {
                    lsp = .skipping(remaining: remaining - rest.count)
                    return
                }
            }
        }
    }

    /// Finds `\r\n\r\n` (or a bare `\n\n`) in `bytes` at or after `from`.
    private static func headerTerminator(
        in bytes: [UInt8], from: Int
    ) -> (headerEnd: Int, bodyStart: Int)? {
        var i = from
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if i + 1 < bytes.count && bytes[i + 1] == 0x0A { return (i, i + 2) }
                if i + 2 < bytes.count && bytes[i + 1] == 0x0D && bytes[i + 2] == 0x0A {
                    return (i, i + 3)
                }
            }
            i += 1
        }
        return nil
    }

    /// Reads the Content-Length value out of a header block.
    static func contentLength(ofHeader header: ArraySlice<UInt8>) -> Result<Int, FramingFailure> {
        let text = String(decoding: header, as: UTF8.self)
        var length: Int?
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            guard let colon = line.firstIndex(of: ":") else {
                return .failure(FramingFailure("malformed frame header line"))
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            if name == "content-length" {
                guard let n = Int(value), n >= 0 else {
                    return .failure(FramingFailure("invalid Content-Length value"))
                }
                length = n
            }
        }
        guard let length else { return .failure(FramingFailure("frame header without Content-Length")) }
        return .success(length)
    }

    @inline(__always)
    static func isBlank(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09
    }
}

/// A reason a frame could not be read.
struct FramingFailure: Error, ExpressibleByStringLiteral {
    let reason: String
    init(_ reason: String) { self.reason = reason }
    init(stringLiteral value: String) { self.reason = value }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
