import Foundation

/// A cgroup mount point made of `files` (path under it: contents), in a
/// temporary directory the caller removes.
func cgroupHierarchy(_ files: [String: String]) throws -> String {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-cgroup-\(UUID().uuidString)")
    for (path, text) in files {
        let file = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }
    return root.path
}
