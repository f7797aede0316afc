// swift-tools-version:6.0
// ocirpc: the ec.oci.* policy builtins served as JSON-RPC 2.0 over stdio.
// No package dependencies: only the toolchain and Debian C libraries.
import PackageDescription

let package = Package(
    name: "ocirpc",
    products: [
        .executable(name: "ocirpc", targets: ["ocirpc"]),
    ],
    targets: [
        // Locks and OS threads for the hot path.
        .target(name: "Locking"),
        // JSON value type, strict parser and writer over bytes.
        .target(name: "JSON"),
        // Stdin/stdout framing: newline-delimited and Content-Length.
        .target(name: "Framing", dependencies: ["Locking"]),
        // Line-oriented stderr logging.
        .target(name: "Logging", dependencies: ["JSON"]),
        // JSON-RPC 2.0 dispatch: method registry, params, cancellation, batches.
        .target(name: "RPCDispatch", dependencies: ["JSON", "Locking"]),
        // Configuration, lifecycle and server methods; wires the pieces together.
        .target(name: "ServerCore", dependencies: ["JSON", "Framing", "RPCDispatch", "Logging"]),
        .executableTarget(name: "ocirpc", dependencies: ["ServerCore"]),

        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "FramingTests", dependencies: ["Framing"]),
        .testTarget(name: "RPCDispatchTests", dependencies: ["RPCDispatch", "JSON"]),
        .testTarget(name: "ServerCoreTests", dependencies: ["ServerCore", "JSON", "RPCDispatch", "Logging", "ocirpc"]),
    ],
    swiftLanguageModes: [.v6]
)
