import Foundation
import Testing
@testable import Registry

@Suite struct HTTPMessages {
    private func response(contentType: String?) -> HTTPResponse {
        HTTPResponse(status: 200, headers: contentType.map { ["content-type": $0] } ?? [:], body: [])
    }

    @Test(arguments: [
        ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.manifest.v1+json"),
        ("application/json; charset=utf-8", "application/json"),
        ("  text/plain ;q=1", "text/plain"),
        ("\tapplication/x\t", "application/x"),
        (";charset=utf-8", ""),
        ("   ", ""),
    ])
    func mediaTypeDropsParametersAndSpaces(header: String, expected: String) {
        #expect(response(contentType: header).mediaType == expected)
    }

    @Test(arguments: [
        ("bytes 100-199/200", true),
        ("BYTES 100-199/*", true),
        ("bytes 100-100/101", true),
        ("bytes 100-199/199", false),
        ("bytes 0-199/200", false),
        ("bytes 101-199/200", false),
        ("bytes 100-99/200", false),
        ("bytes */200", false),
        ("bytes 100-199", false),
        ("bytes 100-199/200 ", false),
        ("bytes +100-199/200", false),
        ("bytes 100-199/2x0", false),
        ("items 100-199/200", false),
        ("bytes 100-99999999999999999999/*", false),
        ("bytes 100-1\u{0301}99/200", false),
        ("bytes 100-١٩٩/200", false),
        ("bytes\t100-199/200", false),
        ("bytes\u{0}100-199/200", false),
        ("", false),
    ])
    func aResumedDownloadTakesOnlyTheRangeItAskedFor(contentRange: String, continues: Bool) {
        #expect(PartialDownload.continues(contentRange, from: 100) == continues)
    }

    @Test func mediaTypeOfAResponseWithoutContentTypeIsEmpty() {
        #expect(response(contentType: nil).mediaType == "")
    }

    @Test func headersAreLookedUpWithoutRegardToCase() {
        #expect(response(contentType: "a/b").header("Content-TYPE") == "a/b")
    }

    @Test func onlyTheResponseHeadersTheClientReadsAreKeptWhateverTheirCase() {
        func kept(_ name: String) -> String? {
            Array(name.utf8).withUnsafeBytes { ResponseHeaders.index(of: $0) }.map { ResponseHeaders.names[$0] }
        }
        #expect(kept("Docker-Content-Digest") == "docker-content-digest")
        #expect(kept("WWW-AUTHENTICATE") == "www-authenticate")
        #expect(kept("content-type") == "content-type")
        #expect(kept("Retry-After") == "retry-after")
        #expect(kept("Content-Length") == "content-length")
        #expect(kept("Location") == "location")
        #expect(kept("Date") == nil)
        #expect(kept("Content-Lengthy") == nil)
        #expect(kept("Content-Lengt") == nil)
        #expect(kept("") == nil)
        #expect(kept("Etag-Digest-Of-Content") == nil, "a name longer than any kept one")
        #expect(kept("Docker-Content-Digesu") == nil, "the length of a kept name")
    }

    @Test func eachKeptHeaderHasASlotOfItsOwn() {
        var given: [String: String] = ["Date": "today"]
        for (index, name) in ResponseHeaders.names.enumerated() { given[name.uppercased()] = "value \(index)" }
        let headers = ResponseHeaders(given)
        for (index, name) in ResponseHeaders.names.enumerated() {
            #expect(headers.value(name) == "value \(index)")
            #expect(headers[index] == "value \(index)")
        }
        #expect(headers.value("date") == nil)
    }

    @Test func everyKeptHeaderNameHasALengthOfItsOwn() {
        // index(of:) compares a name with the one kept name of its length.
        let lengths = ResponseHeaders.names.map(\.utf8.count)
        #expect(Set(lengths).count == lengths.count)
        for (index, name) in ResponseHeaders.names.enumerated() {
            #expect(Array(name.utf8).withUnsafeBytes { ResponseHeaders.index(of: $0) } == index)
        }
    }

    @Test func theProgressClockIsOnTheScaleOfTheEnginesClock() {
        // The idle check subtracts one from the other.
        let now = CurlTransfer.now()
        let progress = CurlTransfer.progressTime()
        let gap = now > progress ? now - progress : progress - now
        #expect(gap < 100_000_000, "\(gap) ns apart")
    }

    @Test func settingAHeaderReplacesItWhateverItsCase() {
        var request = HTTPRequest(url: URL(string: "http://127.0.0.1/v2/")!)
        request.setHeader("authorization", "Basic x")
        request.setHeader("Authorization", "Bearer y")
        #expect(request.headers == [HTTPRequest.Header("Authorization", "Bearer y")])
        request.setHeader("AUTHORIZATION", nil)
        #expect(request.headers.isEmpty)
    }

    @Test func authorityIsHostAndPortOfTheURL() {
        #expect(HTTPRequest(url: "http://127.0.0.1:5000/v2/a/manifests/t").authority == "127.0.0.1:5000")
        #expect(HTTPRequest(url: "https://[::1]:443/v2/").authority == "[::1]:443")
        #expect(HTTPRequest(url: "https://quay.io").authority == "quay.io")
    }
}
