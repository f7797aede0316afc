import CCurl
import Glibc
import Locking

/// The libcurl header lists of requests that carry no credentials: the
/// same few (`Expect:` and one of the `Accept` values the client sends)
/// again and again, so each is built once and kept for the process instead
/// of built and freed per request. libcurl only reads a list while it
/// sends. A request with an `Authorization` header always gets a list of
/// its own, freed with its transfer: credentials are never kept here; nor
/// is a `Range` (a resumed download's), which is asked once.
final class KeptHeaderLists: Sendable {
    /// The process's lists, used by every transfer.
    static let shared = KeptHeaderLists(limit: 16)

    /// Distinct lists kept at most; past it, lists are built per request.
    let limit: Int

    private struct Entry: @unchecked Sendable {
        let headers: [HTTPRequest.Header]
        let list: UnsafeMutablePointer<curl_slist>
    }

    private let entries = Locked([Entry]())

    init(limit: Int) {
        self.limit = limit
    }

    deinit {
        entries.withLock { entries in
            for entry in entries { ocirpc_slist_free_all(entry.list) }
        }
    }

    /// The kept list for `headers`, built the first time; nil when the
    /// request carries credentials or a range, or the limit is reached.
    func list(for headers: [HTTPRequest.Header]) -> UnsafeMutablePointer<curl_slist>? {
        guard !headers.contains(where: Self.isNotKept) else { return nil }
        return entries.withLock { entries in
            // A handful of entries whose values are the same strings each
            // time: comparing them is cheaper than hashing them.
            if let kept = entries.first(where: { $0.headers == headers }) { return kept.list }
            guard entries.count < limit, case .success(let list) = Self.make(headers) else { return nil }
            entries.append(Entry(headers: headers, list: list))
            return list
        }
    }

    /// A new list for `headers`, with `Expect:` first (no 100-continue
    /// round trip); the caller frees it with `ocirpc_slist_free_all`.
    /// A failure, with nothing left allocated, when libcurl could not
    /// allocate the list, or when a header line holds a line break or a
    /// NUL: libcurl sends a line as it is given, so one would add lines to
    /// the request, and C would cut the line at the other. Every value from
    /// outside is checked before it becomes a header (a token, by
    /// `HTTPRequest.Header.isSendableValue`); this is the last guard, on
    /// every header of every request.
    static func make(_ headers: [HTTPRequest.Header]) -> Result<UnsafeMutablePointer<curl_slist>, CurlFailure> {
        guard var list = "Expect:".withCString({ ocirpc_slist_append(nil, $0) }) else {
            return .failure(CurlFailure(.connection, "out of memory"))
        }
        for header in headers {
            let line = String(joining: header.name, ": ", header.value)
            let length = line.utf8.count
            // On failure libcurl returns nil and leaves `list` as it was.
            let longer = line.withCString { text -> Result<UnsafeMutablePointer<curl_slist>, CurlFailure> in
                // glibc's strcspn scans 16 bytes at a time: a token of a
                // few KiB is checked on each request it goes with.
                guard strcspn(text, "\r\n") == length else {
                    return .failure(
                        CurlFailure(.unsendableHeader, "its \(header.name) header holds a line break or a NUL byte"))
                }
                return ocirpc_slist_append(list, text).map { .success($0) }
                    ?? .failure(CurlFailure(.connection, "out of memory"))
            }
            switch longer {
            case .success(let appended): list = appended
            case .failure:
                ocirpc_slist_free_all(list)
                return longer
            }
        }
        return .success(list)
    }

    /// `Authorization` (credentials) or `Range` (asked once).
    private static func isNotKept(_ header: HTTPRequest.Header) -> Bool {
        let length = header.name.utf8.count
        return (length == 13 && header.name.lowercased() == "authorization")
            || (length == 5 && header.name.lowercased() == "range")
    }
}
