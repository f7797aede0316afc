import CCurl
import Testing

@testable import Registry

/// Which side a failed transfer is laid to: the registry's (-32004, which a
/// policy may let be undefined, as the original does) or this one's
/// (-32603, which fails the evaluation).
@Suite struct TransferFailureTests {
    init() throws {
        if let error = ocirpc_curl_load() { throw CurlFailure(.library, String(cString: error)) }
    }

    @Test func libcurlsOwnFailuresAreThisSidesNotTheRegistrys() {
        for code in [CURLE_OUT_OF_MEMORY, CURLE_FAILED_INIT, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_NOT_BUILT_IN] {
            let failure = CurlTransfer.failure(code)
            #expect(failure.kind == .library, "\(code)")
            #expect(HTTPTransport.classify(failure, host: "r.example").kind == .internal, "\(code)")
        }
        for kind in [CurlFailure.Kind.localFile, .library, .unsendableHeader] {
            #expect(HTTPTransport.classify(CurlFailure(kind, "x"), host: "r.example").kind == .internal, "\(kind)")
        }
    }

    @Test func whatTheRegistryOrTheNetworkDoesIsTheRegistrys() {
        for code in [CURLE_COULDNT_CONNECT, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_TOO_MANY_REDIRECTS] {
            let error = HTTPTransport.classify(CurlTransfer.failure(code), host: "r.example")
            #expect(error.kind == .unavailable, "\(code)")
        }
    }
}
