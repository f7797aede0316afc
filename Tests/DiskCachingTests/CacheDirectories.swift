import Foundation

/// A new cache directory at `path` stamped as just trimmed: no trim runs in
/// the background while a test damages or ages files by hand (tests that
/// trim call `trimNow()`). Returns `path`.
@discardableResult
func stampedCacheDirectory(_ path: String) throws -> String {
    try FileManager.default.createDirectory(atPath: path + "/ocirpc/v2", withIntermediateDirectories: true)
    try Data().write(to: URL(fileURLWithPath: path + "/ocirpc/v2/last-trim"))
    return path
}

/// A fresh temporary path for a cache directory.
func temporaryCachePath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("ocirpc-disk-\(UUID().uuidString)").path
}

/// Bytes of the files `names` in `directory`.
func fileBytes(_ names: [String], in directory: String) -> Int {
    names.reduce(0) { total, name in
        total + ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.size] as? Int) ?? 0)
    }
}
