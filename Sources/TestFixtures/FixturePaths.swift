import Foundation

/// Where the package is, for tests that read its files or its build.
package enum FixturePaths {
    package static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
