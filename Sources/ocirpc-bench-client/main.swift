// The registry client alone, for bench/: fetches the manifests REPO:t0 ..
// REPO:t<COUNT-1> (by tag) with CONCURRENCY workers on one client, checks
// each digest against the registry's, and prints the seconds taken.
//   ocirpc-bench-client HOST:PORT REPO COUNT CONCURRENCY
import Foundation
import Locking
import Logging
import Registry

let arguments = CommandLine.arguments
guard arguments.count == 5, let count = Int(arguments[3]), let concurrency = Int(arguments[4]), count > 0,
    concurrency > 0
else {
    FileHandle.standardError.write(Data("usage: ocirpc-bench-client HOST:PORT REPO COUNT CONCURRENCY\n".utf8))
    exit(2)
}
let (host, repository) = (arguments[1], arguments[2])
var configuration = RegistryClient.Configuration()
configuration.transport.maxConnectionsPerHost = concurrency
let client = RegistryClient(configuration: configuration, logger: .disabled)
let failures = Locked(0)
let done = DispatchSemaphore(value: 0)
let start = DispatchTime.now().uptimeNanoseconds
Task.detached {
    let cursor = Locked(0)
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                while true {
                    let index = cursor.withLock { next in
                        defer { next += 1 }
                        return next
                    }
                    guard index < count else { return }
                    do {
                        _ = try await client.fetchManifest(ImageReference.parse("\(host)/\(repository):t\(index)"))
                    } catch {
                        failures.withLock { $0 += 1 }
                    }
                }
            }
        }
    }
    done.signal()
}
done.wait()
let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
guard failures.withLock({ $0 }) == 0 else {
    FileHandle.standardError.write(Data("\(failures.withLock { $0 }) fetches failed\n".utf8))
    exit(1)
}
print(String(format: "%.4f", seconds))
