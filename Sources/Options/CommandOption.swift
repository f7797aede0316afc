/// Settings one module reads from the command line: a plain value type
/// whose `init()` holds the defaults users get when they set nothing.
public protocol OptionSection: Sendable {
    init()
}

/// One option, `--flag VALUE` or `OCIRPC_VARIABLE=VALUE`, declared by the
/// module whose settings it fills.
public struct CommandOption: Sendable {
    public let flag: String
    public let variable: String
    public let valueName: String
    public let help: String
    /// Given more than once, it adds to a list (the variable takes a
    /// comma-separated list); given on the command line, it replaces the
    /// variable's list.
    public let repeatable: Bool
    let apply: @Sendable (inout ParsedOptions, String) throws(ConfigurationError) -> Void

    /// An option that sets a member of the section `S` from its text.
    public init<S: OptionSection>(
        _ section: S.Type, flag: String, variable: String, valueName: String, help: String,
        repeatable: Bool = false,
        apply: @escaping @Sendable (inout S, String) throws(ConfigurationError) -> Void
    ) {
        self.flag = flag
        self.variable = variable
        self.valueName = valueName
        self.help = help
        self.repeatable = repeatable
        self.apply = { (options: inout ParsedOptions, text: String) throws(ConfigurationError) in
            var settings = options[S.self]
            try apply(&settings, text)
            options[S.self] = settings
        }
    }
}

/// What the command line and the environment said, section by section,
/// and the environment itself (read once, for what the modules look up
/// beyond their options: credentials, `SSL_CERT_FILE`, ...).
public struct ParsedOptions: Sendable {
    private var sections: [ObjectIdentifier: any OptionSection] = [:]
    public let environment: [String: String]

    public init(environment: [String: String] = [:]) {
        self.environment = environment
    }

    /// The section `S` as set, or its defaults.
    public subscript<S: OptionSection>(_ section: S.Type) -> S {
        get { sections[ObjectIdentifier(S.self)] as? S ?? S() }
        set { sections[ObjectIdentifier(S.self)] = newValue }
    }
}
