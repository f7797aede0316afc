/// A parsed `WWW-Authenticate` challenge, e.g.
/// `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"`.
public struct AuthChallenge: Sendable, Equatable {
    public enum Scheme: Sendable, Equatable { case basic, bearer }

    public let scheme: Scheme
    /// Parameters by lower-cased name (realm, service, scope, ...).
    public let parameters: [String: String]
    /// Whether the registry that sent it is at a public address: its realm
    /// must then be at one too (`HTTPRequest.onlyPublicAddresses`).
    package var fromPublicAddress = false

    public init?(_ header: String) {
        let trimmed = header.drop { $0 == " " }
        guard let space = trimmed.firstIndex(of: " ") ?? (trimmed.isEmpty ? nil : trimmed.endIndex) else { return nil }
        switch trimmed[..<space].lowercased() {
        case "basic": scheme = .basic
        case "bearer": scheme = .bearer
        default: return nil
        }
        parameters = Self.parseParameters(trimmed[space...])
    }

    /// `key="quoted, value", key2=token` into a dictionary.
    static func parseParameters(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var rest = text[...]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].trimmingCharacters(in: " ").lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var end = rest.endIndex
                for index in rest.indices {
                    let c = rest[index]
                    if escaped {
                        value.append(c)
                        escaped = false
                    } else if c == "\\" {
                        escaped = true
                    } else if c == "\"" {
                        end = index
                        break
                    } else {
                        value.append(c)
                    }
                }
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : rest[rest.endIndex...]
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: " ")
                rest = rest[end...]
            }
            if !key.isEmpty { result[key] = value }
        }
        return result
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = self
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
