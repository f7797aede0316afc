extension String {
    /// `parts` one after another, made at their exact size in one
    /// allocation. A URL or a cache key built by interpolation grows its
    /// buffer as it goes, an allocation and a copy each time it outgrows it.
    package init(joining parts: String...) {
        var count = 0
        for part in parts { count += part.utf8.count }
        self.init(unsafeUninitializedCapacity: count) { buffer in
            var end = 0
            for var part in parts {
                part.withUTF8 { bytes in
                    guard let source = bytes.baseAddress else { return }
                    (buffer.baseAddress! + end).initialize(from: source, count: bytes.count)
                    end += bytes.count
                }
            }
            return end
        }
    }
}
