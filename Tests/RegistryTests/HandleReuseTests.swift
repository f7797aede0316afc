import Foundation
import Testing
import TestFixtures
@testable import Registry

/// The engine keeps its easy handles configured between transfers: after a
/// plain GET only what differs per request is set again, after anything
/// else the handle is reset. Nothing of one request may reach the next.
@Suite(.serialized) struct HandleReuseTests {
    /// A transport with an engine of its own (its settings are unique to
    /// this suite), so consecutive requests take the same spare handle.
    private let transport: HTTPTransport = {
        var settings = HTTPTransport.Settings()
        settings.timeout = 29.5
        settings.maxConnectionsPerHost = 1
        settings.retries = 0
        return HTTPTransport(settings: settings, logger: .disabled, counters: RegistryCounters())
    }()

    /// Echoes the method, the body and the Authorization header it got.
    private static func echo(_ request: TestHTTPRequest) -> TestHTTPReply {
        let text =
            "\(request.method) body=\(String(decoding: request.body, as: UTF8.self)) auth=\(request.headers["authorization"] ?? "-")"
        return .response(status: 200, headers: [("Content-Length", String(text.utf8.count))], body: Array(text.utf8))
    }

    private func echoed(_ request: HTTPRequest) async throws -> String {
        let response = try await transport.send(request, kind: .ping)
        #expect(response.status == 200)
        return String(decoding: response.body, as: UTF8.self)
    }

    @Test func everyRequestOnAReusedHandleIsSentAsAskedWhateverCameBefore() async throws {
        let server = try TestHTTPServer(handler: Self.echo)
        defer { server.stop() }
        let url = server.baseURL + "/echo"
        var authorized = HTTPRequest(url: url)
        authorized.setHeader("Authorization", "Bearer one")
        var post = HTTPRequest("POST", url: url)
        post.body = Data("grant=x".utf8)
        var emptyPost = HTTPRequest("POST", url: url)
        emptyPost.body = Data()
        let sequence: [(HTTPRequest, String)] = [
            (authorized, "GET body= auth=Bearer one"),
            (HTTPRequest(url: url), "GET body= auth=-"),
            (HTTPRequest("HEAD", url: url), ""),
            (HTTPRequest(url: url), "GET body= auth=-"),
            (post, "POST body=grant=x auth=-"),
            (HTTPRequest(url: url), "GET body= auth=-"),
            (emptyPost, "POST body= auth=-"),
            (HTTPRequest("DELETE", url: url), "DELETE body= auth=-"),
            (HTTPRequest(url: url), "GET body= auth=-"),
        ]
        for (request, expected) in sequence {
            #expect(try await echoed(request) == expected, "\(request.method)")
        }
    }

    @Test func aBodyLimitOfOneRequestDoesNotCutTheNext() async throws {
        let big = [UInt8](repeating: 0x61, count: 100_000)
        let server = try TestHTTPServer { _ in
            .response(status: 200, headers: [("Content-Length", String(big.count))], body: big)
        }
        defer { server.stop() }
        let directory = try DownloadDirectory.shared()
        // A download with a size limit under the body fails...
        await #expect(throws: RegistryError.self) {
            _ = try await transport.download(
                HTTPRequest(url: server.baseURL + "/blob"), to: directory, hashing: .sha256, limit: 10, kind: .blob)
        }
        // ...and the next request on the same handle has no such limit.
        let response = try await transport.send(HTTPRequest(url: server.baseURL + "/blob"), kind: .blob)
        #expect(response.body.count == big.count)
    }
}
