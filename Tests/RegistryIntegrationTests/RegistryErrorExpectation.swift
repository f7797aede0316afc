import Registry
import Testing

/// The registry error `body` fails with, or nil (recorded) if it succeeds.
func registryError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async
    -> RegistryError?
{
    do {
        try await body()
        Issue.record("expected a registry error", sourceLocation: sourceLocation)
    } catch let error as RegistryError {
        return error
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
