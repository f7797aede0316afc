// swift-tools-version:6.0
// ocirpc: the ec.oci.* policy builtins served as JSON-RPC 2.0 over stdio.
// No package dependencies: only the toolchain and Debian C libraries.
import PackageDescription

let package = Package(
    name: "ocirpc",
    products: [
        .executable(name: "ocirpc", targets: ["ocirpc"])
    ],
    targets: [
        // Locks and OS threads for the hot path.
        .target(name: "Locking", dependencies: ["CSystem"]),
        // What one request did (cache hits and misses, registry requests), for its log line.
        .target(name: "Tally"),
        // The contract's error reasons, shared by every layer that fails.
        .target(name: "Reasons"),
        // Command-line options and OCIRPC_* variables, declared by each module for itself.
        .target(name: "Options"),
        // What the calls in flight may hold in memory together, and each call's share of it.
        .target(name: "Memory", dependencies: ["CSystem", "Reasons"]),
        // JSON value type, strict parser and writer over bytes.
        .target(name: "JSON"),
        // Stdin/stdout framing: newline-delimited and Content-Length.
        .target(name: "Framing", dependencies: ["Locking", "Memory"]),
        // Debian C libraries.
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libcurl (Debian's libcurl4-openssl-dev headers), loaded on first use.
        .target(name: "CCurl", path: "Sources/CCurl"),
        // System calls Swift's Glibc module lacks (pipe2, malloc_trim).
        .target(name: "CSystem", path: "Sources/CSystem"),
        .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // Streaming tar, gzip (zlib) and zstd (libzstd) readers.
        .target(name: "Archive", dependencies: ["CZlib", "CZstd", "JSON", "Memory", "Reasons"]),
        // YAML (libyaml) to JSON with go-yaml v2 scalar resolution.
        .target(name: "YAML", dependencies: ["CYAML", "JSON"]),
        // The byte-budgeted content cache, the tag TTL cache, singleflight.
        .target(name: "Caching", dependencies: ["Locking", "Tally"]),
        // The registry client: references, digests, auth, HTTP (libcurl), endpoints.
        .target(
            name: "Registry",
            dependencies: [
                "CCurl", "COpenSSL", "CSystem", "JSON", "Logging", "Locking", "Memory", "Options", "Reasons", "Tally",
            ]),
        // Line-oriented stderr logging.
        .target(name: "Logging", dependencies: ["JSON", "Locking"]),
        // JSON-RPC 2.0 dispatch: method registry, params, cancellation, batches.
        .target(name: "RPCDispatch", dependencies: ["CSystem", "JSON", "Locking", "Memory", "Reasons", "Tally"]),
        // Configuration, lifecycle and server methods; wires the pieces together.
        .target(
            name: "ServerCore",
            dependencies: [
                "CSystem", "JSON", "Framing", "Locking", "Memory", "RPCDispatch", "Logging", "Options", "Reasons",
                "Tally",
            ]),
        // Manifests and tag answers kept on disk, shared by every process of the user.
        .target(name: "DiskCaching", dependencies: ["CSystem", "CZlib", "Locking", "Logging", "Registry", "Tally"]),
        // The ten ec.oci.* methods over the registry client and the caches.
        .target(
            name: "OCIMethods",
            dependencies: [
                "Archive", "Caching", "CSystem", "DiskCaching", "JSON", "Locking", "Logging", "Memory", "Options",
                "Reasons",
                "RPCDispatch",
                "Registry", "ServerCore", "Tally", "YAML",
            ]),
        // Shared by the tests: the real test registry, the binary as a child
        // process, tar and compression builders for fixtures.
        .target(name: "TestFixtures", dependencies: ["CSystem", "CZlib", "CZstd", "JSON", "Logging", "Registry"]),
        .executableTarget(name: "ocirpc", dependencies: ["ServerCore", "OCIMethods"]),
        // fuzz/: the libFuzzer entry point for every parser of outside input.
        .executableTarget(
            name: "ocirpc-fuzz",
            dependencies: ["Archive", "DiskCaching", "Framing", "JSON", "OCIMethods", "Registry", "YAML"]),
        // bench/: a latency-adding proxy in front of the registry.
        .executableTarget(name: "ocirpc-bench-proxy", dependencies: ["TestFixtures"]),
        // bench/: a registry with bearer-token auth, for counting each client's requests.
        .executableTarget(name: "ocirpc-bench-registry", dependencies: ["TestFixtures"]),
        // bench/: the registry client alone, fetching manifests with N workers.
        .executableTarget(name: "ocirpc-bench-client", dependencies: ["Locking", "Logging", "Registry"]),

        .testTarget(name: "JSONTests", dependencies: ["JSON", "TestFixtures"]),
        .testTarget(name: "FramingTests", dependencies: ["Framing", "Memory", "TestFixtures"]),
        .testTarget(name: "MemoryTests", dependencies: ["Memory"]),
        .testTarget(name: "LoggingTests", dependencies: ["Logging", "JSON"]),
        .testTarget(
            name: "RegistryTests",
            dependencies: ["Reasons", "Options", "Registry", "JSON", "Locking", "Memory", "TestFixtures"]),
        // Against a real registry (docker-registry) started by the tests.
        .testTarget(
            name: "RegistryIntegrationTests",
            dependencies: ["Reasons", "Registry", "JSON", "Locking", "Logging", "TestFixtures"]),
        // The ten methods through the binary, against a real registry.
        .testTarget(
            name: "MethodsIntegrationTests",
            dependencies: ["DiskCaching", "Reasons", "JSON", "Locking", "Logging", "Registry", "TestFixtures"]),
        .testTarget(name: "ArchiveTests", dependencies: ["Reasons", "Archive", "Memory", "Registry", "TestFixtures"]),
        .testTarget(name: "YAMLTests", dependencies: ["CYAML", "YAML", "JSON", "TestFixtures"]),
        .testTarget(
            name: "DiskCachingTests", dependencies: ["CSystem", "DiskCaching", "Registry", "Locking", "Logging"]),
        .testTarget(name: "CachingTests", dependencies: ["Caching"]),
        .testTarget(
            name: "OCIMethodsTests",
            dependencies: [
                "Reasons", "OCIMethods", "Locking", "Memory", "Registry", "RPCDispatch", "Archive", "JSON",
                "TestFixtures", "YAML",
            ]),
        .testTarget(name: "RPCDispatchTests", dependencies: ["Reasons", "RPCDispatch", "JSON", "Locking", "Memory"]),
        .testTarget(
            name: "ServerCoreTests",
            dependencies: [
                "Reasons", "Options", "Registry", "ServerCore", "JSON", "RPCDispatch", "Logging", "OCIMethods",
                "TestFixtures", "ocirpc",
            ]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds optimise across modules: the caches and the singleflight are
// generic, and unspecialised generics cost their callers a metadata lookup
// on every call. They also build generic type metadata through accessor
// functions rather than by demangling a name at run time: a name lookup
// checks each generic requirement by scanning every conformance record in
// the binary (Foundation's included), which was 13% of the instructions
// from spawn to the first registry answer (bench/README.md, "Fixed cost").
for target in package.targets where target.type != .system {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [
            .unsafeFlags(
                [
                    "-cross-module-optimization",
                    "-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors",
                ], .when(configuration: .release))
        ]
}
