import Foundation
import JSON
import Testing
@testable import Logging

/// What a log line holds, whatever the text it is given.
@Suite struct LogLines {
    /// The lines `log` writes through a logger of `format`.
    private func lines(_ format: LogFormat, _ log: (Logger) -> Void) throws -> [String] {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw CocoaError(.fileWriteUnknown) }
        log(Logger(level: .debug, format: format, fd: ends[1]))
        close(ends[1])
        let bytes = FileHandle(fileDescriptor: ends[0], closeOnDealloc: true).readDataToEndOfFile()
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    /// A ref or a method name can come from outside: it can neither start
    /// a forged line nor send a terminal its escape sequences.
    @Test func controlCharactersFromOutsideAreEscapedInText() throws {
        let hostile = "app:v1\n2026-01-01T00:00:00.000Z error forged\u{1B}[2J\u{9B}0m\r\t"
        let text = try lines(.text) { $0.debug("request \(hostile)", [("subject", hostile), ("plain", "a\u{7}b")]) }
        #expect(text.count == 1)
        let line = try #require(text.first)
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }, "\(line)")
        #expect(line.contains(#"app:v1\u000a2026-01-01T00:00:00.000Z error forged\u001b[2J\u009b0m\u000d\u0009"#))
        #expect(line.hasSuffix(#" plain=a\u0007b"#))
    }

    @Test func textValuesAreQuotedWhenTheyHoldSpacesQuotesOrEquals() throws {
        let text = try lines(.text) {
            $0.info("started", [("a", "one"), ("b", "two words"), ("c", #"say "hi""#), ("d", "k=v"), ("e", "")])
        }
        #expect(text.first?.hasSuffix(#"info started a=one b="two words" c="say \"hi\"" d="k=v" e="""#) == true)
    }

    @Test func jsonLinesAreOneObjectEach() throws {
        let json = try lines(.json) { $0.warn("a\nb", [("subject", "x\ny")]) }
        #expect(json.count == 1)
        let value = try JSONParser.parse(Array(try #require(json.first).utf8))
        #expect(value["msg"] == "a\nb")
        #expect(value["subject"] == "x\ny")
    }
}
