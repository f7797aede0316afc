// A docker-registry with bearer-token auth and its token server, for
// bench/: pushes COUNT images tagged t0..t{COUNT-1} into REPOSITORY, prints
// its host:port, and answers each line on stdin with the number of token
// requests so far ("tokens N"); serves until stdin closes.
//   ocirpc-bench-registry USER PASSWORD REPOSITORY COUNT
import Foundation
import TestFixtures

let arguments = CommandLine.arguments
guard arguments.count == 5, let count = Int(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: ocirpc-bench-registry USER PASSWORD REPOSITORY COUNT\n".utf8))
    exit(2)
}
let registry = try await TestRegistry(auth: .token(user: arguments[1], password: arguments[2]))
for index in 0..<count {
    _ = try await registry.pushMinimalImage(arguments[3], "t\(index)", annotations: #"{"i":"\#(index)"}"#)
}
FileHandle.standardOutput.write(Data("\(registry.host)\n".utf8))
let pushing = registry.tokenIssuer?.requests ?? 0
while let _ = readLine() {
    FileHandle.standardOutput.write(Data("tokens \((registry.tokenIssuer?.requests ?? 0) - pushing)\n".utf8))
}
registry.stop()
