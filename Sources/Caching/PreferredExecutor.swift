/// The task executor the current work prefers, carried as a task-local so
/// that work started on its behalf in unstructured tasks (singleflight
/// flights) prefers it too; structured child tasks inherit the preference
/// by themselves.
public enum PreferredExecutor {
    @TaskLocal public static var current: (any TaskExecutor)?

    /// Runs `body` preferring `executor`, and lets the flights it starts
    /// prefer it as well (with nil, no preference).
    public static func with<T: Sendable>(
        _ executor: (any TaskExecutor)?, _ body: () async throws -> T
    ) async rethrows -> T {
        try await $current.withValue(executor) {
            try await withTaskExecutorPreference(executor) { try await body() }
        }
    }
}
