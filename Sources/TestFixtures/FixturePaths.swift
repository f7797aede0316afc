import Foundation

/// Where the package is, for tests that read its files or its build.
public enum FixturePaths {
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
