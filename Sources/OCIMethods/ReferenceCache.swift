import Locking
import RPCDispatch
import Registry

/// Parsed references by their text. Policies ask about the same refs again
/// and again, and parsing was a sixth of the time of a cached request.
/// Bounded: when full it starts over.
final class ReferenceCache: Sendable {
    static let capacity = 16_384
    private let parsed = Locked([String: ImageReference]())

    /// The reference `text` names; `-32602 invalid_reference` when none.
    func parse(_ text: String) throws(RPCError) -> ImageReference {
        if let known = parsed.withLock({ $0[text] }) { return known }
        let reference = try ErrorMapping.parseReference(text)
        parsed.withLock { table in
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[text] = reference
        }
        return reference
    }

    /// Makes room for `count` more references at once (a batch's), so the
    /// table does not grow step by step while they are parsed.
    func reserveCapacity(forMore count: Int) {
        let count = min(max(0, count), Self.capacity)
        parsed.withLock { table in table.reserveCapacity(min(Self.capacity, table.count + count)) }
    }
}
