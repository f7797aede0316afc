import JSON
import RPCDispatch

/// What a feature module (the ec.oci.* methods, later others) plugs into
/// the server: its methods, its `server.stats` sections and its caches.
public struct ServerExtension: Sendable {
    public var methods: [MethodSpec]
    /// Members added to `capabilities` in the `initialize` result.
    public var capabilities: [JSONObject.Member]
    /// Named sections merged into the `server.stats` result.
    public var stats: @Sendable () -> [JSONObject.Member]
    /// Drops every cache the module keeps (`server.clearCache`).
    public var clearCaches: @Sendable () -> Void

    public init(
        methods: [MethodSpec],
        capabilities: [JSONObject.Member] = [],
        stats: @escaping @Sendable () -> [JSONObject.Member] = { [] },
        clearCaches: @escaping @Sendable () -> Void = {}
    ) {
        self.methods = methods
        self.capabilities = capabilities
        self.stats = stats
        self.clearCaches = clearCaches
    }
}
