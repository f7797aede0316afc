/// What a parsed value occupies in memory, estimated from its shape: the
/// inline size of every value, the buffers of arrays and objects, the heap
/// copies of strings too long to be stored inline, and the allocator's
/// overhead per block. Caches charge values by this, not by their text: a
/// 10-million-element array of `1` is 20 MB of JSON but 240 MB of values.
extension JSONValue {
    /// Bytes of heap header and allocator bookkeeping per allocation.
    static let allocationOverhead = 48
    /// UTF-8 bytes a String keeps inline, without a heap buffer.
    static let inlineStringBytes = 15

    /// Estimated bytes this value holds, itself included.
    public var memoryFootprint: Int {
        MemoryLayout<JSONValue>.stride + heapBytes
    }

    /// Bytes this value holds outside its own inline storage.
    private var heapBytes: Int {
        switch self {
        case .null, .bool: return 0
        case .number(let text), .string(let text): return Self.stringHeapBytes(text)
        case .array(let elements):
            guard !elements.isEmpty else { return 0 }
            var total = Self.allocationOverhead + elements.count * MemoryLayout<JSONValue>.stride
            for element in elements { total += element.heapBytes }
            return total
        case .object(let object):
            guard !object.members.isEmpty else { return 0 }
            var total = Self.allocationOverhead + object.members.count * MemoryLayout<JSONObject.Member>.stride
            for member in object.members {
                total += Self.stringHeapBytes(member.key) + member.value.heapBytes
            }
            return total
        case .encoded(let text):
            return text.bytes.isEmpty ? 0 : Self.allocationOverhead + text.bytes.count
        }
    }

    private static func stringHeapBytes(_ text: String) -> Int {
        let count = text.utf8.count
        return count <= inlineStringBytes ? 0 : allocationOverhead + (count + 15) & ~15
    }
}
