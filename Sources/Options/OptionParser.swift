/// What the command line asks for.
public enum Invocation: Sendable {
    case run(ParsedOptions)
    /// `call [--progress] METHOD [ARG...]` after the options: one request,
    /// then exit.
    case call(ParsedOptions, method: String, arguments: [String], progress: Bool)
    case help
    case version
}

/// Reads the options of every module from `OCIRPC_*` environment variables,
/// then the command line (which wins).
public enum OptionParser {
    /// Parses `arguments` (without the program name) over `environment`.
    public static func parse(
        arguments: [String], environment: [String: String], options: [CommandOption]
    ) throws(ConfigurationError) -> Invocation {
        // The command line first, so a list it gives can replace the variable's.
        var given: [(CommandOption, String)] = []
        var call: (method: String, arguments: [String], progress: Bool)?
        var index = 0
        scan: while index < arguments.count {
            let argument = arguments[index]
            index += 1
            switch argument {
            case "-h", "--help": return .help
            case "-V", "--version": return .version
            default: break
            }
            if argument == "call" {
                var rest = Array(arguments[index...])
                let progress = rest.first == "--progress"
                if progress { rest.removeFirst() }
                guard let method = rest.first else {
                    throw ConfigurationError(message: "call needs a METHOD (see --help)")
                }
                call = (method, Array(rest.dropFirst()), progress)
                break scan
            }
            var name = argument
            var value: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard let option = options.first(where: { $0.flag == name }) else {
                throw ConfigurationError(message: "unknown option '\(argument)' (see --help)")
            }
            if value == nil {
                guard index < arguments.count else {
                    throw ConfigurationError(message: "\(name) needs a value (\(option.valueName))")
                }
                value = arguments[index]
                index += 1
            }
            given.append((option, value ?? ""))
        }
        let listsOnTheCommandLine = Set(given.filter { $0.0.repeatable }.map { $0.0.flag })

        var parsed = ParsedOptions(environment: environment)
        for option in options where !listsOnTheCommandLine.contains(option.flag) {
            guard let value = environment[option.variable] else { continue }
            let values =
                option.repeatable
                ? value.split(separator: ",").map { OptionValue.trimmed($0) }.filter { !$0.isEmpty }
                : [value]
            for text in values {
                do {
                    try option.apply(&parsed, text)
                } catch {
                    throw ConfigurationError(message: "\(option.variable): " + error.message)
                }
            }
        }
        for (option, text) in given {
            try option.apply(&parsed, text)
        }
        if let call { return .call(parsed, method: call.method, arguments: call.arguments, progress: call.progress) }
        return .run(parsed)
    }

    /// The options part of `--help`: flag, value, help and variable.
    public static func describe(_ options: [CommandOption]) -> [String] {
        var lines: [String] = []
        for option in options {
            let left = "  \(option.flag) \(option.valueName)"
            let pad = String(repeating: " ", count: max(1, 42 - left.count))
            lines.append(left + pad + option.help)
            lines.append(String(repeating: " ", count: 42) + "[\(option.variable)]")
        }
        return lines
    }
}
