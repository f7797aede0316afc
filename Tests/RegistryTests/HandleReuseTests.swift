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

    /// The last guard: a header value holding a line break or a NUL (every
    /// value from outside is checked before it becomes a header) fails its
    /// request before anything is sent, and the next request is sent as asked.
    @Test func aHeaderHoldingALineBreakOrANULIsNeverSent() async throws {
        let server = try TestHTTPServer(handler: Self.echo)
        defer { server.stop() }
        let url = server.baseURL + "/echo"
        for value in ["Bearer a\r\nX-Injected: yes", "Bearer a\nb", "Bearer a\rb", "Bearer a\u{0}b", "\n"] {
            var request = HTTPRequest(url: url)
            request.setHeader("Authorization", value)
            let error = await #expect(throws: RegistryError.self) { _ = try await transport.send(request, kind: .ping) }
            #expect(error?.reason == .internal)
            // The server's failure (-32603), not the registry's content:
            // a policy may let unsupported content be undefined.
            #expect(error?.kind == .internal)
            #expect(error?.message.contains("Authorization header holds a line break or a NUL byte") == true)
        }
        // A header of the shared lists (no credentials) is checked too.
        var accept = HTTPRequest(url: url)
        accept.setHeader("Accept", "text/plain\r\nX-Injected: yes")
        await #expect(throws: RegistryError.self) { _ = try await transport.send(accept, kind: .ping) }
        #expect(server.connectionsAccepted == 0)
        // Other control characters inject nothing; the token's own check
        // is Go's, stricter.
        var tabbed = HTTPRequest(url: url)
        tabbed.setHeader("Authorization", "Bearer\tone\u{7F}")
        #expect(try await echoed(tabbed) == "GET body= auth=Bearer\tone\u{7F}")
    }

    @Test func sendableValuesHoldNoControlCharacterButTheTab() {
        for byte in UInt8(0)...UInt8(127) {
            let text = String(decoding: [0x61, byte, 0x62], as: UTF8.self)
            let expected = byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
            #expect(HTTPRequest.Header.isSendableValue(text) == expected, "byte \(byte)")
        }
        // Text beyond ASCII is not refused (Go's client sends it as it is).
        #expect(HTTPRequest.Header.isSendableValue("é✓"))
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
