import JSON
import Testing
@testable import RPCDispatch

/// The examples of section 7 of the JSON-RPC 2.0 specification, verbatim.
@Suite struct JSONRPCSpecificationExamples {
    private func exchange(_ request: String, expecting count: Int) async -> [JSONValue] {
        let sink = CollectingSink()
        let dispatcher = Dispatcher(registry: testRegistry(), sink: sink)
        dispatcher.receive(request)
        await dispatcher.waitUntilIdle()
        let got = await sink.waitFor(count, seconds: count == 0 ? 0.05 : 10)
        #expect(got.count == count)
        return got
    }

    @Test func positionalParameters() async {
        #expect(
            await exchange(#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#, expecting: 1)
                == [json(#"{"jsonrpc": "2.0", "id": 1, "result": 19}"#)])
        #expect(
            await exchange(#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#, expecting: 1)
                == [json(#"{"jsonrpc": "2.0", "id": 2, "result": -19}"#)])
    }

    @Test func namedParameters() async {
        #expect(
            await exchange(
                #"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#,
                expecting: 1)
                == [json(#"{"jsonrpc": "2.0", "id": 3, "result": 19}"#)])
    }

    @Test func notificationsGetNoResponse() async {
        _ = await exchange(#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#, expecting: 0)
        _ = await exchange(#"{"jsonrpc": "2.0", "method": "foobar"}"#, expecting: 0)
    }

    @Test func nonExistentMethod() async {
        let got = await exchange(#"{"jsonrpc": "2.0", "method": "foobar2", "id": "1"}"#, expecting: 1)
        #expect(got.first?["id"] == "1")
        #expect(got.first?["error"]?["code"] == -32601)
        #expect(got.first?["error"]?["data"]?["reason"] == "unknown_method")
    }

    @Test func invalidJSON() async {
        let got = await exchange(#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#, expecting: 1)
        #expect(got.first?["id"] == .null)
        #expect(got.first?["error"]?["code"] == -32700)
        #expect(got.first?["error"]?["data"]?["reason"] == "invalid_json")
    }

    @Test func invalidRequestObject() async {
        let got = await exchange(#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#, expecting: 1)
        #expect(got.first?["id"] == .null)
        #expect(got.first?["error"]?["code"] == -32600)
    }

    @Test func batchWithInvalidJSON() async {
        let got = await exchange(
            #"[ {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method" ]"#,
            expecting: 1)
        #expect(got.first?["error"]?["code"] == -32700)
        #expect(got.first?["id"] == .null)
    }

    @Test func emptyArray() async {
        let got = await exchange("[]", expecting: 1)
        #expect(got.first?.objectValue != nil, "a single error object, not an array")
        #expect(got.first?["error"]?["code"] == -32600)
        #expect(got.first?["id"] == .null)
    }

    @Test func invalidBatchOfOne() async {
        let got = await exchange("[1]", expecting: 1)
        #expect(got.first?.arrayValue?.count == 1)
        #expect(got.first?.arrayValue?.first?["error"]?["code"] == -32600)
    }

    @Test func invalidBatchOfThree() async {
        let got = await exchange("[1,2,3]", expecting: 1)
        let responses = got.first?.arrayValue ?? []
        #expect(responses.count == 3)
        #expect(responses.allSatisfy { $0["error"]?["code"] == -32600 && $0["id"] == .null })
    }

    @Test func mixedBatch() async {
        let request = """
            [
                {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
                {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
                {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
                {"foo": "boo"},
                {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
                {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
            ]
            """
        let got = await exchange(request, expecting: 1)
        let responses = got.first?.arrayValue ?? []
        #expect(responses.count == 5)
        let byID = Dictionary(uniqueKeysWithValues: responses.map { ($0["id"]?.jsonText ?? "", $0) })
        #expect(byID[#""1""#] == json(#"{"jsonrpc": "2.0", "id": "1", "result": 7}"#))
        #expect(byID[#""2""#] == json(#"{"jsonrpc": "2.0", "id": "2", "result": 19}"#))
        #expect(byID["null"]?["error"]?["code"] == -32600)
        #expect(byID[#""5""#]?["error"]?["code"] == -32601)
        #expect(byID[#""9""#] == json(#"{"jsonrpc": "2.0", "id": "9", "result": ["hello", 5]}"#))
    }

    @Test func batchOfOnlyNotificationsGetsNoReply() async {
        _ = await exchange(
            #"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]}, {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#,
            expecting: 0)
    }
}
