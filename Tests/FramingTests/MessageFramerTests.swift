import Testing
@testable import Framing

/// What a framer reported, as comparable values.
private enum Seen: Equatable {
    case mode(FramingMode)
    case message(String)
    case tooLarge
    case invalid
}

/// Feeds `chunks` in order (then end of input) and records every event.
private func frame(_ chunks: [[UInt8]], max: Int = 1 << 20, finish: Bool = true) -> [Seen] {
    var framer = MessageFramer(maxMessageBytes: max)
    var seen: [Seen] = []
    let record: (FrameEvent) -> Void = { event in
        switch event {
        case .mode(let m): seen.append(.mode(m))
        case .message(let bytes): seen.append(.message(String(decoding: bytes, as: UTF8.self)))
        case .tooLarge: seen.append(.tooLarge)
        case .invalidFrame: seen.append(.invalid)
        }
    }
    for chunk in chunks {
        chunk.withUnsafeBytes { framer.feed($0, record) }
    }
    if finish { framer.finish(record) }
    return seen
}

private func frame(_ text: String, max: Int = 1 << 20) -> [Seen] { frame([Array(text.utf8)], max: max) }

/// Splits `text` into chunks of `size` bytes.
private func chunks(_ text: String, size: Int) -> [[UInt8]] {
    let bytes = Array(text.utf8)
    return stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
}

@Suite struct NewlineDelimitedFraming {
    @Test func oneMessagePerLine() {
        #expect(frame("{\"a\":1}\n[2]\n") == [.mode(.newlineDelimited), .message("{\"a\":1}"), .message("[2]")])
    }

    @Test func messageSplitAcrossReadsIsReassembled() {
        let text = "{\"jsonrpc\":\"2.0\",\"id\":1}\n{\"b\":2}\n"
        for size in [1, 2, 3, 7, 13] {
            #expect(
                frame(chunks(text, size: size)) == [
                    .mode(.newlineDelimited), .message("{\"jsonrpc\":\"2.0\",\"id\":1}"), .message("{\"b\":2}"),
                ])
        }
    }

    @Test func crlfAndBlankLinesAreTolerated() {
        #expect(frame("\r\n\n{}\r\n  \n\t\r\n[]\r\n") == [.mode(.newlineDelimited), .message("{}"), .message("[]")])
    }

    @Test func finalLineWithoutNewlineIsStillAMessage() {
        #expect(frame("{}\n{\"partial\":") == [.mode(.newlineDelimited), .message("{}"), .message("{\"partial\":")])
    }

    @Test func hugeLineIsReportedOnceAndSkipped() {
        let big = String(repeating: "x", count: 100)
        #expect(
            frame("{}\n\(big)\n[1]\n", max: 50) == [
                .mode(.newlineDelimited), .message("{}"), .tooLarge, .message("[1]"),
            ])
    }

    @Test func hugeLineSpanningManyReadsIsReportedOnce() {
        let text = "[0]\n" + String(repeating: "y", count: 1000) + "\n[1]\n"
        #expect(
            frame(chunks(text, size: 7), max: 64) == [
                .mode(.newlineDelimited), .message("[0]"), .tooLarge, .message("[1]"),
            ])
    }

    @Test func lineOfExactlyTheLimitIsAccepted() {
        let line = "[" + String(repeating: "1", count: 8) + "]"
        #expect(frame(line + "\n", max: 10) == [.mode(.newlineDelimited), .message(line)])
        #expect(frame(chunks(line + "\n", size: 3), max: 10) == [.mode(.newlineDelimited), .message(line)])
    }

    @Test func invalidUTF8IsPassedThroughForTheParserToReject() {
        #expect(frame([[0x7B, 0xFF, 0x7D, 0x0A]]) == [.mode(.newlineDelimited), .message("{\u{FFFD}}")])
    }

    @Test func emptyInputReportsNothing() {
        #expect(frame([]) == [])
        #expect(frame("\n\n") == [])
    }
}

@Suite struct ContentLengthFraming {
    @Test func detectedFromTheFirstBytes() {
        let body = "{\"a\":1}"
        #expect(frame("Content-Length: \(body.utf8.count)\r\n\r\n\(body)") == [.mode(.contentLength), .message(body)])
    }

    @Test func headerNameIsCaseInsensitiveAndOtherHeadersAreIgnored() {
        let body = "[1]"
        let text = "content-length: 3\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n\(body)"
        #expect(frame(text) == [.mode(.contentLength), .message(body)])
    }

    @Test func framesSplitAcrossReadsAreReassembled() {
        let a = "{\"id\":1,\"x\":\"\\n\"}"
        let b = "{\"id\":2}"
        let text = "Content-Length: \(a.utf8.count)\r\n\r\n\(a)Content-Length: \(b.utf8.count)\r\n\r\n\(b)"
        for size in [1, 2, 5, 11] {
            #expect(frame(chunks(text, size: size)) == [.mode(.contentLength), .message(a), .message(b)])
        }
    }

    @Test func oversizedBodyIsSkippedAndTheNextFrameRead() {
        let big = String(repeating: "z", count: 200)
        let text = "Content-Length: 200\r\n\r\n\(big)Content-Length: 2\r\n\r\n{}"
        #expect(frame(chunks(text, size: 16), max: 100) == [.mode(.contentLength), .tooLarge, .message("{}")])
    }

    @Test func headerWithoutContentLengthIsInvalid() {
        #expect(
            frame("Content-Type: x\r\n\r\nContent-Length: 2\r\n\r\n{}") == [
                .mode(.contentLength), .invalid, .message("{}"),
            ])
    }

    @Test func badLengthIsInvalid() {
        #expect(
            frame("Content-Length: -4\r\n\r\nContent-Length: 2\r\n\r\n[]") == [
                .mode(.contentLength), .invalid, .message("[]"),
            ])
    }

    @Test func endOfInputInsideABodyIsReported() {
        #expect(frame("Content-Length: 10\r\n\r\n{\"a\"") == [.mode(.contentLength), .invalid])
    }

    @Test func endOfInputInsideAHeaderIsReported() {
        #expect(frame("Content-Length: 10\r\n") == [.mode(.contentLength), .invalid])
    }
}
