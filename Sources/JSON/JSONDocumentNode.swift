import Glibc

/// A value of a parsed JSON document, read the same way whether it is a
/// `JSONValue` or a place on a `JSONTape`: what answers are shaped from,
/// so the two give the same answer by construction.
package protocol JSONDocumentNode {
    /// Calls `body` with each member of an object in order; false when
    /// this is not an object.
    func forEachMember(_ body: (JSONMemberKey, Self) -> Void) -> Bool
    /// Calls `body` with each element of an array in order; false when
    /// this is not an array.
    func forEachElement(_ body: (Self) -> Void) -> Bool
    /// The last member named `name` (as a lookup sees it); nil when there
    /// is none or this is not an object.
    func member(_ name: StaticString) -> Self?
    var isObject: Bool { get }
    var isArray: Bool { get }
    var isString: Bool { get }
    var isNull: Bool { get }
    /// The string's decoded text; nil when this is not a string.
    var stringText: String? { get }
    /// The number's text; nil when this is not a number.
    var numberText: String? { get }
    /// What `body` makes of the string's decoded UTF-8 (no `String` made);
    /// nil when this is not a string.
    func withStringUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T?
    /// What `body` makes of the number's text; nil when this is not a number.
    func withNumberUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T?
    /// Appends this string as `JSONWriter` writes it; false, with nothing
    /// appended, when this is not a string.
    func writeString(into out: inout OutputBytes) -> Bool
    /// Appends this number's text; false when this is not a number.
    func writeNumber(into out: inout OutputBytes) -> Bool
}

/// An object member's key, compared and hashed by its UTF-8 bytes (as
/// Go's `encoding/json` tells keys apart; `String`'s `==` would also equate
/// canonically equivalent spellings). Holding bytes, it is valid only as
/// long as the text it points into.
package struct JSONMemberKey: Hashable {
    private enum Storage {
        case bytes(UnsafeBufferPointer<UInt8>)
        case decoded(UnsafeBufferPointer<UInt8>)
        case text(String)
    }
    private let storage: Storage

    /// A key whose bytes need no escape, in place.
    init(bytes: UnsafeBufferPointer<UInt8>) { storage = .bytes(bytes) }
    /// A decoded key, in place (its bytes may need escapes when written).
    init(decoded: UnsafeBufferPointer<UInt8>) { storage = .decoded(decoded) }
    /// A decoded key.
    package init(text: String) { storage = .text(text) }

    /// What `body` makes of the key's decoded UTF-8.
    package func withUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T { withBytes(body) }

    /// What `body` makes of the key's bytes.
    private func withBytes<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        switch storage {
        case .bytes(let bytes), .decoded(let bytes): return body(bytes)
        case .text(var text): return text.withUTF8(body)
        }
    }

    /// Whether this key is `name`.
    package func `is`(_ name: StaticString) -> Bool {
        withBytes { Self.same($0, name) }
    }

    /// Appends the key as a JSON string.
    package func write(into out: inout OutputBytes) {
        switch storage {
        case .bytes(let bytes):
            // Kept in place only when no byte of it needs an escape.
            out.append(UInt8(ascii: "\""))
            out.append(bytes)
            out.append(UInt8(ascii: "\""))
        case .decoded(let bytes): JSONWriter.writeString(utf8: bytes, into: &out)
        case .text(let text): JSONWriter.writeString(text, into: &out)
        }
    }

    package static func == (a: JSONMemberKey, b: JSONMemberKey) -> Bool {
        a.withBytes { x in b.withBytes { y in same(x, y) } }
    }

    package func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Whether `bytes` are `name`'s.
    static func same(_ bytes: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
        same(bytes, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    private static func same(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        guard x.count == y.count else { return false }
        guard x.count > 0 else { return true }
        return memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
    }
}

extension JSONValue: JSONDocumentNode {
    package func forEachMember(_ body: (JSONMemberKey, JSONValue) -> Void) -> Bool {
        guard let object = objectValue else { return false }
        for member in object.members { body(JSONMemberKey(text: member.key), member.value) }
        return true
    }

    package func forEachElement(_ body: (JSONValue) -> Void) -> Bool {
        guard let array = arrayValue else { return false }
        for element in array { body(element) }
        return true
    }

    package func member(_ name: StaticString) -> JSONValue? {
        guard let members = objectValue?.members else { return nil }
        for member in members.reversed() where JSONMemberKey(text: member.key).is(name) { return member.value }
        return nil
    }

    package var isObject: Bool { objectValue != nil }
    package var isArray: Bool { arrayValue != nil }
    package var isString: Bool { stringValue != nil }
    package var stringText: String? { stringValue }

    package func withStringUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        guard var text = stringValue else { return nil }
        return text.withUTF8(body)
    }

    package func withNumberUTF8<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        guard var text = numberText else { return nil }
        return text.withUTF8(body)
    }

    package func writeString(into out: inout OutputBytes) -> Bool {
        guard let text = stringValue else { return false }
        JSONWriter.writeString(text, into: &out)
        return true
    }

    package func writeNumber(into out: inout OutputBytes) -> Bool {
        guard let text = numberText else { return false }
        JSONWriter.write(.number(text), into: &out)
        return true
    }
}
