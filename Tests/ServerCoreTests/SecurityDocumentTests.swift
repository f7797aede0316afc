import Foundation
import Testing

/// SECURITY.md's table of limits says, for each limit, what holds the
/// server to it. Read against the tests themselves, so that a test renamed
/// or removed cannot leave a limit written down as tested when nothing
/// tests it.
@Suite struct SecurityDocument {
    /// Every row of the table names at least one test, and every name in
    /// its last column is a test function, a suite, a client test or a
    /// fuzz target that exists.
    @Test func everyLimitNamesTestsThatExist() throws {
        let root = OpenRPCContract.packageRoot
        let document = try String(contentsOf: root.appendingPathComponent("SECURITY.md"), encoding: .utf8)
        let rows = try #require(Self.limitRows(of: document))
        // 69 rows when this test was written: fewer than half means the
        // table was not found as it is written, and little would be checked.
        #expect(rows.count > 30, "\(rows.count) rows")

        let known = try Self.declaredNames(under: root)
        var named = 0
        for row in rows {
            let names = Self.codeSpans(in: row.enforcedBy).map { span in
                // `Suite.test`, `test(argument:)`: the last part, its name.
                String(span.split(separator: ".").last ?? "").split(separator: "(").first.map(String.init) ?? ""
            }
            #expect(!names.isEmpty, "the limit '\(row.what)' names nothing that enforces it")
            for name in names where !known.contains(name) {
                Issue.record("the limit '\(row.what)' names `\(name)`, which no test, suite or fuzz target declares")
            }
            named += names.count
        }
        #expect(named > 100, "\(named) names")
    }

    /// A row of the limits table: its first and last columns.
    struct Row {
        let what: String
        let enforcedBy: String
    }

    /// The rows of the table under `## Limits`, nil when there is none.
    static func limitRows(of document: String) -> [Row]? {
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        guard let heading = lines.firstIndex(where: { $0 == "## Limits" }) else { return nil }
        var rows: [Row] = []
        var sawHeader = false
        for line in lines[(heading + 1)...] {
            if line.hasPrefix("## ") { break }
            guard line.hasPrefix("|") else {
                if sawHeader && !rows.isEmpty { break }
                continue
            }
            if line.hasPrefix("|---") { continue }
            guard sawHeader else {
                sawHeader = true
                continue
            }
            let cells = Self.cells(of: String(line))
            guard cells.count >= 4, let what = cells.first, let last = cells.last else { continue }
            rows.append(Row(what: what, enforcedBy: last))
        }
        return sawHeader ? rows : nil
    }

    /// A table row's cells, split at the `|` outside code spans.
    static func cells(of line: String) -> [String] {
        var cells: [String] = []
        var current = ""
        var inCode = false
        for character in line.dropFirst() {
            if character == "`" { inCode.toggle() }
            if character == "|" && !inCode {
                cells.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
        }
        return cells
    }

    /// The texts between backquotes.
    static func codeSpans(in text: String) -> [String] {
        text.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    /// The names the tests declare: Swift functions and types under
    /// `Tests`, the clients' test functions (Python `def`, Go `func`), and
    /// the fuzz targets (`case "name"` in the fuzzer's entry).
    static func declaredNames(under root: URL) throws -> Set<String> {
        var names: Set<String> = []
        let patterns: [(directory: String, suffixes: [String], pattern: String)] = [
            ("Tests", [".swift"], #"(?:func|struct|class|enum)\s+([A-Za-z_][A-Za-z0-9_]*)"#),
            ("clients", [".py"], #"def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\("#),
            ("clients", ["_test.go"], #"func\s+([A-Za-z_][A-Za-z0-9_]*)\s*\("#),
            ("Sources/ocirpc-fuzz", [".swift"], #"case\s+((?:"[a-z]+",?\s*)+):"#),
        ]
        for (directory, suffixes, pattern) in patterns {
            let expression = try NSRegularExpression(pattern: pattern)
            let base = root.appendingPathComponent(directory)
            guard let files = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else {
                continue
            }
            for case let file as URL in files where suffixes.contains(where: { file.path.hasSuffix($0) }) {
                guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
                let range = NSRange(text.startIndex..., in: text)
                for match in expression.matches(in: text, range: range) {
                    guard let captured = Range(match.range(at: 1), in: text) else { continue }
                    // A fuzz target's `case "gzip", "zstd":` names two.
                    for name in text[captured].split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" }) {
                        names.insert(String(name))
                    }
                }
            }
        }
        return names
    }
}
