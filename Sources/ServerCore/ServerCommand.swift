import Options

/// The `ocirpc` command line: the server's options followed by those of
/// each module, and the `--help` text that lists them.
public enum ServerCommand {
    /// Every option the command takes with `modules`.
    public static func options(_ modules: [ServerModule]) -> [CommandOption] {
        ServerOptions.options + modules.flatMap(\.options)
    }

    /// Parses `arguments` (without the program name) over `environment`.
    public static func parse(
        arguments: [String], environment: [String: String], modules: [ServerModule]
    ) throws(ConfigurationError) -> Invocation {
        try OptionParser.parse(arguments: arguments, environment: environment, options: options(modules))
    }

    /// The `--help` text.
    public static func usage(_ modules: [ServerModule]) -> String {
        var lines = [
            "ocirpc \(ServerVersion.current): the ec.oci.* policy builtins as a JSON-RPC 2.0 server on stdio.",
            "",
            "Usage: ocirpc [options]",
            "       ocirpc [options] call [--progress] METHOD [ARG...]",
            "",
            "Reads requests on stdin (one JSON message per line, or Content-Length framing),",
            "writes responses on stdout, logs on stderr. Send rpc.discover for the contract.",
            "",
            "With call, runs one request and exits: each ARG is a JSON value when it parses",
            "as one, else a string. The result goes to stdout as JSON; an error goes to",
            "stderr as one line and the exit status is 1. A batch (ec.oci.image_manifests)",
            "shows n/total on stderr when stderr is a terminal, or with --progress. For example:",
            "  ocirpc call ec.oci.image_manifest quay.io/org/app:v1",
            "  ocirpc call ec.oci.image_manifests '[\"quay.io/org/a:1\", \"quay.io/org/b:2\"]'",
            "",
            "Options (each also as an environment variable; the command line wins):",
        ]
        lines += OptionParser.describe(options(modules))
        lines.append("  -h, --help" + String(repeating: " ", count: 30) + "show this help")
        lines.append("  -V, --version" + String(repeating: " ", count: 27) + "show the version")
        for module in modules where !module.helpNotes.isEmpty {
            lines.append("")
            lines += module.helpNotes
        }
        return lines.joined(separator: "\n")
    }
}
