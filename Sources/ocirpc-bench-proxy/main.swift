// A latency-adding proxy in front of a registry, for bench/: prints its
// host:port, then forwards until stdin closes.
//   ocirpc-bench-proxy UPSTREAM_HOST:PORT DELAY_MS
import Foundation
import TestFixtures

let arguments = CommandLine.arguments
guard arguments.count == 3, let delay = Double(arguments[2]) else {
    FileHandle.standardError.write(Data("usage: ocirpc-bench-proxy UPSTREAM_HOST:PORT DELAY_MS\n".utf8))
    exit(2)
}
let proxy = try RegistryProxy(upstream: arguments[1])
proxy.setLatency(delay / 1000)
FileHandle.standardOutput.write(Data("\(proxy.host)\n".utf8))
while let _ = readLine() {}
proxy.stop()
print("requests \(["manifest", "blob", "ping", "referrers", "other"].map { proxy.count($0) }.reduce(0, +))")
