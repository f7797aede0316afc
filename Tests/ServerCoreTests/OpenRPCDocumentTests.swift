import Foundation
import JSON
import Logging
import OCIMethods
import RPCDispatch
import Reasons
import Testing
@testable import ServerCore

/// The contract and the code are tested against each other so they cannot drift.
@Suite struct OpenRPCContract {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func document() throws -> JSONValue {
        let data = try Data(contentsOf: Self.packageRoot.appendingPathComponent("protocol/openrpc.json"))
        return try JSONParser.parse(Array(data))
    }

    @Test func embeddedDocumentMatchesProtocolFile() throws {
        let onDisk = try String(
            contentsOf: Self.packageRoot.appendingPathComponent("protocol/openrpc.json"), encoding: .utf8)
        #expect(
            OpenRPCDocument.text.trimmingCharacters(in: .whitespacesAndNewlines)
                == onDisk.trimmingCharacters(in: .whitespacesAndNewlines),
            "run scripts/embed-openrpc after editing protocol/openrpc.json")
    }

    /// The reasons of `ErrorData.reason` in the document are exactly the
    /// cases of `ErrorReason`, and the reasons listed per error code cover
    /// the same set.
    @Test func theDocumentedReasonsAreTheCodesReasons() throws {
        let doc = try document()
        let declared =
            (doc["components"]?["schemas"]?["ErrorData"]?["properties"]?["reason"]?["enum"]?.arrayValue ?? [])
            .compactMap(\.stringValue)
        let vocabulary = ErrorReason.allCases.map(\.rawValue)
        #expect(declared.count == Set(declared).count, "a reason is listed twice")
        #expect(
            Set(declared) == Set(vocabulary),
            "only in the document: \(Set(declared).subtracting(vocabulary).sorted()); only in the code: \(Set(vocabulary).subtracting(declared).sorted())"
        )
        let errors = doc["components"]?["errors"]?.objectValue?.members ?? []
        let perCode = Set(
            errors.flatMap {
                ($0.value["data"]?["reasons"]?.stringValue ?? "")
                    .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            })
        #expect(
            perCode == Set(vocabulary),
            "not under any code: \(Set(vocabulary).subtracting(perCode).sorted()); unknown: \(perCode.subtracting(vocabulary).sorted())"
        )
    }

    /// Every reason of the vocabulary is given by some line of the sources
    /// (as `.caseName`), so the contract documents nothing the server never says.
    @Test func everyReasonIsGivenSomewhere() throws {
        let sources = Self.packageRoot.appendingPathComponent("Sources")
        let walker = FileManager.default.enumerator(atPath: sources.path)
        var text = ""
        while let path = walker?.nextObject() as? String {
            guard path.hasSuffix(".swift"), !path.hasPrefix("Reasons/"), !path.hasPrefix("TestFixtures"),
                !path.hasSuffix("OpenRPCDocument.swift")
            else { continue }
            text += try String(contentsOf: sources.appendingPathComponent(path), encoding: .utf8)
        }
        for reason in ErrorReason.allCases {
            let name = String(describing: reason)
            let use = try Regex("\\.\(name)\\b")
            #expect(
                text.contains(use),
                "no source gives .\(name) (\(reason.rawValue)): remove it from the vocabulary and the contract")
        }
    }

    private static func ociExtension() -> ServerExtension {
        OCIMethods.makeExtension(environment: [:], logger: .disabled)
    }

    @Test func everyServedMethodIsDocumentedAndViceVersa() throws {
        let server = Server(
            options: ServerOptions(), logger: .disabled, extensions: [Self.ociExtension()],
            input: -1, output: -1)
        let methods = try document()["methods"]?.arrayValue ?? []
        let clientToServer = Set(
            methods.filter { $0["x-direction"] != "server-to-client" }.compactMap { $0["name"]?.stringValue })
        #expect(clientToServer == Set(server.servedMethods))
        #expect(methods.contains { $0["name"] == "$/progress" && $0["x-direction"] == "server-to-client" })
    }

    @Test func everyStatsMemberIsDocumented() throws {
        let method = try #require(try document()["methods"]?.arrayValue?.first { $0["name"] == "server.stats" })
        let documented = Set(method["result"]?["schema"]?["properties"]?.objectValue?.keys ?? [])
        let served = Set(["requests", "inFlight", "heapBytes", "memoryHeld"] + Self.ociExtension().stats().map(\.key))
        #expect(served == documented)
    }

    @Test func declaredParamsOfTheOCIMethodsMatchTheContract() throws {
        let specs = Self.ociExtension().methods
        let methods = try document()["methods"]?.arrayValue ?? []
        #expect(specs.count == 10)
        for spec in specs {
            let documented = try #require(methods.first { $0["name"]?.stringValue == spec.name }, "\(spec.name)")
            let params = documented["params"]?.arrayValue ?? []
            #expect(spec.params.map(\.name) == params.compactMap { $0["name"]?.stringValue }, "\(spec.name) names")
            #expect(
                spec.params.map(\.required) == params.map { $0["required"]?.boolValue ?? false },
                "\(spec.name) required")
            let positional = (documented["x-positional"]?.arrayValue ?? []).compactMap(\.stringValue)
            #expect(spec.params.filter(\.positional).map(\.name) == positional, "\(spec.name) positional")
        }
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
