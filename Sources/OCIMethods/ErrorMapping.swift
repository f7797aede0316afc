import Reasons
import Archive
import JSON
import Memory
import RPCDispatch
import Registry
import YAML

/// Turns the errors of the layers below into the contract's error objects,
/// with the ref the caller gave.
enum ErrorMapping {
    static func rpcError(_ error: any Error, ref: String) -> RPCError {
        switch error {
        case let error as RPCError:
            guard error.data["ref"] == nil, error.code != .requestCancelled else { return error }
            return error.with("ref", .string(ref))
        case let error as RegistryError:
            return rpcError(error, ref: ref)
        case let error as MemoryLimitExceeded:
            return .memoryLimit(error, ref: ref)
        case let error as ArchiveError:
            let code: RPCErrorCode
            switch error.kind {
            case .tooLarge: code = .limitExceeded
            case .corrupt: code = .unsupportedContent
            case .io: code = .internalError
            case .cancelled: return .cancelled
            }
            var data: JSONObject = ["ref": .string(ref)]
            // The budget of the calls in flight: free again once they are done.
            if error.reason.isHeldByCallsInFlight { data.append("retryable", .bool(true)) }
            // Names in the message as people read them (`ArchiveName`).
            return RPCError(
                code, reason: error.reason, message: "\(ref): \(ArchiveName.readable(error.message))", data: data)
        case is CancellationError:
            return .cancelled
        case is Shapes.AnswerTooLarge:
            return RPCError(
                .limitExceeded, reason: .manifestTooLarge,
                message: "\(ref): the answer would be over \(Shapes.maxAnswerBytes >> 20) MiB",
                data: ["ref": .string(ref)])
        case let error as YAMLError:
            return RPCError(
                error.isLimit ? .limitExceeded : .unsupportedContent,
                reason: error.isLimit ? .yamlTooLarge : error.isAmbiguous ? .ambiguousYAML : .notJSON,
                message: "\(ref): \(error.message)", data: ["ref": .string(ref)])
        default:
            return RPCError(
                .internalError, reason: .internal, message: "\(ref): internal error",
                data: ["ref": .string(ref)])
        }
    }

    static func rpcError(_ error: RegistryError, ref: String) -> RPCError {
        let code: RPCErrorCode
        switch error.kind {
        case .notFound: code = .notFound
        case .accessDenied: code = .accessDenied
        case .integrity: code = .integrityFailure
        case .unavailable: code = .registryUnavailable
        case .internal: code = .internalError
        case .limitExceeded: code = .limitExceeded
        case .unsupported: code = .unsupportedContent
        case .invalidReference: code = .invalidParams
        case .cancelled: return .cancelled
        }
        var data = JSONObject()
        data.append("ref", .string(ref))
        if let status = error.httpStatus { data.append("httpStatus", .integer(status)) }
        if !error.registryErrors.isEmpty {
            data.append(
                "registryErrors",
                .array(
                    error.registryErrors.map {
                        ["code": .string($0.code), "message": .string($0.message)]
                    }))
        }
        if code == .registryUnavailable || error.retryable { data.append("retryable", .bool(error.retryable)) }
        return RPCError(code, reason: error.reason, message: error.message, data: data)
    }

    /// Parses `text`; `-32602 invalid_reference` when it is not a reference.
    static func parseReference(_ text: String) throws(RPCError) -> ImageReference {
        do {
            return try ImageReference.parse(text)
        } catch {
            throw invalidReference(error)
        }
    }

    /// `-32602 invalid_reference` for a string that is not a reference.
    static func invalidReference(_ error: ReferenceError) -> RPCError {
        RPCError(
            .invalidParams, reason: .invalidReference, message: error.description,
            data: ["ref": .string(error.reference)])
    }
}
