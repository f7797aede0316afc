import FoundationEssentials
import Glibc
import Locking
import Memory

/// What a download that broke off kept: the file its attempt wrote, how
/// many bytes, their hash so far, and what they hold of the download
/// budget. The transport's next attempt asks only for the rest
/// (`Range: bytes=<written>-`, `HTTPTransport`); a transfer answered with
/// exactly that range takes it up and appends to its file (`CurlTransfer`),
/// and one answered otherwise writes a file of its own. Whoever holds it
/// last without its being taken up discards it.
///
/// The bytes are no more trusted for being kept: the blob is verified
/// against its digest once whole, resumed or not.
final class PartialDownload: @unchecked Sendable {
    let path: URL
    /// `path` as text.
    let pathText: String
    /// Bytes in the file, all of them hashed by `hasher`.
    let written: Int
    let hasher: DigestHasher
    /// How much the file took of the download budget (`State.charge`).
    let taken: Int
    private let state: Locked<State>

    private struct State {
        /// What the file holds of the download budget, until it is taken
        /// up or discarded.
        var charge: MemoryShare?
        var takenUp = false
        var discarded = false
    }

    init(path: URL, pathText: String, written: Int, hasher: DigestHasher, charge: MemoryShare?, taken: Int) {
        self.path = path
        self.pathText = pathText
        self.written = written
        self.hasher = hasher
        self.taken = taken
        state = Locked(State(charge: charge))
    }

    /// The request header that asks for the rest.
    var rangeHeader: String { "bytes=\(written)-" }

    /// Whether a transfer took it up (and owns its file since).
    var isTakenUp: Bool { state.withLock { $0.takenUp } }

    /// Opens the file to append the rest, and hands it over with its
    /// charge; nil when it was taken up or discarded already, or the file
    /// is not as it was left.
    func takeUp() -> (file: UnsafeMutablePointer<FILE>, charge: MemoryShare?)? {
        let charge = state.withLock { state -> MemoryShare?? in
            guard !state.takenUp, !state.discarded else { return .none }
            state.takenUp = true
            defer { state.charge = nil }
            return .some(state.charge)
        }
        guard let charge else { return nil }
        let fd = DescriptorReserve.admitted(open(pathText, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW))
        var status = stat()
        guard fd >= 0, fstat(fd, &status) == 0, Int(status.st_size) == written, let file = fdopen(fd, "a") else {
            if fd >= 0 { close(fd) }
            state.withLock {
                $0.takenUp = false
                $0.charge = charge
            }
            return nil
        }
        return (file, charge)
    }

    /// Deletes the file and gives its charge back, unless a transfer took
    /// it up. Safe to call more than once.
    func discard() {
        let charge = state.withLock { state -> MemoryShare?? in
            guard !state.takenUp, !state.discarded else { return .none }
            state.discarded = true
            defer { state.charge = nil }
            return .some(state.charge)
        }
        guard charge != nil else { return }
        unlink(pathText)
    }

    /// Whether a `Content-Range` value answers a request for the bytes from
    /// `offset` on: `bytes <first>-<last>/<length or *>` (RFC 9110, 14.4),
    /// ASCII digits only, `first` equal to `offset`, `last` not before it,
    /// and the complete length, when told, past `last`.
    static func continues(_ value: String?, from offset: Int) -> Bool {
        guard let value else { return false }
        var rest = Substring(value).utf8[...]
        let unit = "bytes ".utf8
        // The unit is matched without case (ASCII letters only).
        let lowered = rest.prefix(unit.count).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        guard rest.count > unit.count, lowered.elementsEqual(unit) else { return false }
        rest = rest.dropFirst(unit.count)
        /// The number at the front of `rest`, taken off it.
        func number() -> Int? {
            let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard !digits.isEmpty, digits.count <= 18 else { return nil }
            rest = rest.dropFirst(digits.count)
            return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        }
        guard let first = number(), rest.first == UInt8(ascii: "-") else { return false }
        rest = rest.dropFirst()
        guard let last = number(), rest.first == UInt8(ascii: "/") else { return false }
        rest = rest.dropFirst()
        guard first == offset, last >= first else { return false }
        if rest.elementsEqual("*".utf8) { return true }
        guard let length = number(), rest.isEmpty else { return false }
        return length > last
    }
}
