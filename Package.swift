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
        // Debian C libraries.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // The registry client: references, digests, auth, transport, endpoints.
        .target(name: "Registry", dependencies: ["COpenSSL", "JSON", "Logging", "Locking"]),
        // Line-oriented stderr logging.
        .target(name: "Logging", dependencies: ["JSON"]),
        // JSON-RPC 2.0 dispatch: method registry, params, cancellation, batches.
        .target(name: "RPCDispatch", dependencies: ["JSON", "Locking"]),
        // Configuration, lifecycle and server methods; wires the pieces together.
        .target(name: "ServerCore", dependencies: ["JSON", "Framing", "RPCDispatch", "Logging"]),
        .executableTarget(name: "ocirpc", dependencies: ["ServerCore"]),

        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "FramingTests", dependencies: ["Framing"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "JSON"]),
        // Against a real registry (docker-registry) started by the tests.
        .testTarget(name: "RegistryIntegrationTests", dependencies: ["Registry", "JSON", "Logging"]),
        .testTarget(name: "RPCDispatchTests", dependencies: ["RPCDispatch", "JSON"]),
        .testTarget(name: "ServerCoreTests", dependencies: ["ServerCore", "JSON", "RPCDispatch", "Logging", "ocirpc"]),
    ],
    swiftLanguageModes: [.v6]
)
