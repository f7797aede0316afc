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
package struct OutputBytes: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    package private(set) var count = 0
    private var capacity: Int

    package init(capacity: Int) {
        self.capacity = max(16, capacity)
        base = Self.resized(nil, to: self.capacity)
    }

    deinit { free(base) }

    @inline(__always)
    package mutating func append(_ byte: UInt8) {
        if count == capacity { grow(toHold: 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    package mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if bytes.count > capacity - count { grow(toHold: bytes.count) }
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

    /// Appends what was written to `array`.
    package func copy(into array: inout [UInt8]) {
        array.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
    }

    /// Room for `extra` more bytes: twice the capacity, or more if needed.
    /// (Checked arithmetic: lengths this large cannot be held anyway.)
    private mutating func grow(toHold extra: Int) {
        let needed = count + extra
        let newCapacity = max(capacity <= Int.max / 2 ? capacity * 2 : needed, needed)
        base = Self.resized(base, to: newCapacity)
        capacity = newCapacity
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
