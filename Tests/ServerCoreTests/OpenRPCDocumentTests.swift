import Foundation
import JSON
import Logging
import RPCDispatch
import Testing
@testable import ServerCore

/// The contract and the code are tested against each other so they cannot drift.
@Suite struct OpenRPCContract {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Methods the contract lists whose handlers are not served yet (the
    /// ec.oci.* methods arrive with the registry client). Must shrink to
    /// empty; a served method listed here fails the test.
    static let notYetServed: Set<String> = [
        "ec.oci.blob", "ec.oci.parsed_blob", "ec.oci.blob_files", "ec.oci.descriptor",
        "ec.oci.image_manifest", "ec.oci.image_manifests", "ec.oci.image_files",
        "ec.oci.image_index", "ec.oci.image_tag_refs", "ec.oci.image_referrers",
    ]

    private func document() throws -> JSONValue {
        let data = try Data(contentsOf: Self.packageRoot.appendingPathComponent("protocol/openrpc.json"))
        return try JSONParser.parse(Array(data))
    }

    @Test func embeddedDocumentMatchesProtocolFile() throws {
        let onDisk = try String(contentsOf: Self.packageRoot.appendingPathComponent("protocol/openrpc.json"), encoding: .utf8)
        #expect(OpenRPCDocument.text.trimmingCharacters(in: .whitespacesAndNewlines)
                == onDisk.trimmingCharacters(in: .whitespacesAndNewlines),
                "run scripts/embed-openrpc after editing protocol/openrpc.json")
    }

    @Test func everyServedMethodIsDocumentedAndViceVersa() throws {
        let server = Server(configuration: ServerConfiguration(), logger: .disabled, extensions: [],
                            input: -1, output: -1)
        let methods = try document()["methods"]?.arrayValue ?? []
        let clientToServer = Set(methods.filter { $0["x-direction"] != "server-to-client" }.compactMap { $0["name"]?.stringValue })
        let served = Set(server.servedMethods)
        #expect(served.isDisjoint(with: Self.notYetServed), "remove served methods from notYetServed")
        #expect(clientToServer == served.union(Self.notYetServed))
        #expect(methods.contains { $0["name"] == "$/progress" && $0["x-direction"] == "server-to-client" })
    }

    @Test func everyMethodHasParamsAndEveryRequestAResultSchema() throws {
        for method in try document()["methods"]?.arrayValue ?? [] {
            let name = method["name"]?.stringValue ?? "?"
            #expect(method["params"]?.arrayValue != nil, "\(name) params")
            for param in method["params"]?.arrayValue ?? [] {
                #expect(param["schema"] != nil, "\(name).\(param["name"]?.stringValue ?? "?") schema")
            }
            if method["x-notification"] != true {
                #expect(method["result"]?["schema"] != nil, "\(name) result schema")
            }
        }
    }

    @Test func everyErrorCodeOfTheContractIsDocumented() throws {
        let errors = try document()["components"]?["errors"]?.objectValue?.members.map(\.value) ?? []
        let documented = Set(errors.compactMap { $0["code"]?.intValue })
        #expect(documented == Set(RPCErrorCode.allCases.map(\.rawValue)))
    }
}
