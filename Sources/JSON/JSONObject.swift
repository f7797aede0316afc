/// A JSON object that keeps its members in source (or insertion) order.
///
/// Lookups are linear, which is faster than hashing for the small objects
/// JSON-RPC and OCI manifests are made of. When a key occurs twice, lookups
/// see the last occurrence (as Go's encoding/json does).
public struct JSONObject: Sendable, Equatable {
    /// One `"key": value` pair.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: JSONValue
        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The members in order.
    public private(set) var members: [Member]

    public init(_ members: [Member] = []) {
        self.members = members
    }

    /// An empty object with room for `capacity` members, for one built
    /// member by member whose size is known (one allocation, not several).
    public init(capacity: Int) {
        members = []
        members.reserveCapacity(capacity)
    }

    public var isEmpty: Bool { members.isEmpty }
    public var count: Int { members.count }
    public var keys: [String] { members.map(\.key) }

    /// The value of `key`; setting replaces it in place or appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            var i = members.count
            while i > 0 {
                i -= 1
                if members[i].key == key { return members[i].value }
            }
            return nil
        }
        set {
            if let index = members.lastIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    /// Replaces the value of the member at `index`, keeping its key and place.
    public mutating func replaceValue(at index: Int, with value: JSONValue) {
        members[index].value = value
    }

    /// Appends a member without checking for an existing key.
    public mutating func append(_ key: String, _ value: JSONValue) {
        members.append(Member(key: key, value: value))
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { Member(key: $0.0, value: $0.1) })
    }
}
