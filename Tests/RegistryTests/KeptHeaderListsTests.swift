import CCurl
import Testing

@testable import Registry

/// The header lists kept for requests without credentials.
@Suite struct KeptHeaderListsTests {
    let lists: KeptHeaderLists

    init() throws {
        if let error = ocirpc_curl_load() { throw CurlFailure(.library, String(cString: error)) }
        lists = KeptHeaderLists(limit: 4)
    }

    @Test func theSameHeadersWithoutCredentialsShareOneList() throws {
        let accept = [HTTPRequest.Header("Accept", "application/x-kept-\(#line)")]
        let first = try #require(lists.list(for: accept))
        #expect(lists.list(for: accept) == first)
        #expect(lines(first) == ["Expect:", "Accept: application/x-kept-\(#line - 3)"])
        let other = [HTTPRequest.Header("Accept", "application/x-other-\(#line)")]
        #expect(lists.list(for: other) != first)
    }

    @Test func aRequestWithCredentialsIsNeverGivenAKeptList() {
        for name in ["Authorization", "authorization", "AUTHORIZATION"] {
            let headers = [HTTPRequest.Header("Accept", "application/x-kept"), HTTPRequest.Header(name, "Bearer t")]
            #expect(lists.list(for: headers) == nil)
        }
    }

    /// A resumed download's range is asked once: kept, each would take a
    /// place the requests sent again and again need.
    @Test func aRequestForARangeIsNeverGivenAKeptList() {
        for name in ["Range", "range"] {
            #expect(lists.list(for: [HTTPRequest.Header(name, "bytes=\(#line)-")]) == nil)
        }
    }

    @Test func aListOfItsOwnHoldsEveryHeaderInOrder() throws {
        let headers = [HTTPRequest.Header("Accept", "a/b"), HTTPRequest.Header("Authorization", "Bearer t")]
        let list = try KeptHeaderLists.make(headers).get()
        defer { ocirpc_slist_free_all(list) }
        #expect(lines(list) == ["Expect:", "Accept: a/b", "Authorization: Bearer t"])
    }

    /// A header holding a line break is never made into a list, kept or not.
    @Test func aHeaderHoldingALineBreakGetsNoList() {
        let headers = [HTTPRequest.Header("Accept", "a/b"), HTTPRequest.Header("Authorization", "Bearer t\r\nX: y")]
        guard case .failure(let failure) = KeptHeaderLists.make(headers) else {
            Issue.record("a list was made")
            return
        }
        #expect(failure.kind == .unsendableHeader)
        #expect(lists.list(for: [HTTPRequest.Header("Accept", "a/b\nX: y")]) == nil)
    }

    @Test func noMoreThanTheLimitIsKept() {
        let kept = (0..<6).map { lists.list(for: [HTTPRequest.Header("Accept", "application/x-\($0)")]) }
        #expect(kept.map { $0 != nil } == [true, true, true, true, false, false])
        // Those kept stay kept.
        #expect(lists.list(for: [HTTPRequest.Header("Accept", "application/x-0")]) == kept[0])
    }

    private func lines(_ list: UnsafeMutablePointer<curl_slist>) -> [String] {
        var lines: [String] = []
        var node: UnsafeMutablePointer<curl_slist>? = list
        while let current = node {
            lines.append(String(cString: current.pointee.data))
            node = current.pointee.next
        }
        return lines
    }
}
