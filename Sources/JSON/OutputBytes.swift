import Glibc

/// The bytes the writer appends to: a buffer of its own that grows by
/// doubling, so that each append is a bounds check and a store (an
/// `Array` append also checks that its buffer is not shared, and copying a
/// run goes through the generic sequence path). Copied out once at the end.
///
/// The buffer is `malloc`'d and grown with `realloc`, which moves a large
/// block by remapping its pages rather than copying them, and it is cut to
/// its length before it is copied out: a large answer (up to the response
/// limit) never holds more than twice its size.
///
/// With a `limit`, the buffer never grows past it: an append that would
/// take the text past it is dropped, and so is every later one
/// (`overflowed`; the text is then cut, and not to be used).
package struct OutputBytes: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    package private(set) var count = 0
    private var capacity: Int
    private let limit: Int
    /// Whether an append was dropped at the limit.
    package private(set) var overflowed = false

    package init(capacity: Int, limit: Int = .max) {
        self.limit = max(1, limit)
        self.capacity = min(max(16, capacity), self.limit)
        base = Self.resized(nil, to: self.capacity)
    }

    deinit { free(base) }

    @inline(__always)
    package mutating func append(_ byte: UInt8) {
        if count == capacity { guard grow(toHold: 1) else { return } }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    package mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if bytes.count > capacity - count { guard grow(toHold: bytes.count) else { return } }
        (base + count).update(from: source, count: bytes.count)
        count += bytes.count
    }

    /// Appends a literal's text.
    @inline(__always)
    package mutating func append(_ text: StaticString) {
        append(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends `bytes`.
    package mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    /// What was written, as an array (the buffer is cut to its length first).
    package consuming func array() -> [UInt8] {
        if capacity > count {
            base = Self.resized(base, to: max(1, count))
            capacity = max(1, count)
        }
        return Array(UnsafeBufferPointer(start: base, count: count))
    }

    /// What was written so far, read in place (valid during `body`).
    package func withWritten<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    /// Drops what was written from `offset` on (to rewrite it).
    package mutating func cut(to offset: Int) {
        precondition(offset >= 0 && offset <= count, "cut past the text")
        count = offset
    }

    /// Appends what was written to `array`.
    package func copy(into array: inout [UInt8]) {
        array.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
    }

    /// Room for `extra` more bytes: twice the capacity, or more if needed,
    /// up to the limit; false (and `overflowed`) past it. (Checked
    /// arithmetic: lengths this large cannot be held anyway.)
    private mutating func grow(toHold extra: Int) -> Bool {
        let (needed, overflow) = count.addingReportingOverflow(extra)
        guard !overflowed, !overflow, needed <= limit else {
            overflowed = true
            return false
        }
        let newCapacity = min(max(capacity <= Int.max / 2 ? capacity * 2 : needed, needed), limit)
        base = Self.resized(base, to: newCapacity)
        capacity = newCapacity
        return true
    }

    /// `block` (or a new block) resized to `size` bytes. Out of memory
    /// stops the process, as an `Array` that cannot grow does.
    private static func resized(_ block: UnsafeMutablePointer<UInt8>?, to size: Int) -> UnsafeMutablePointer<UInt8> {
        guard let raw = realloc(block, size) else {
            preconditionFailure("out of memory for \(size) bytes of output")
        }
        return raw.assumingMemoryBound(to: UInt8.self)
    }
}
