import Testing
import TestFixtures

extension Trait where Self == ConditionTrait {
    /// The suite starts Debian's `docker-registry`: without it, a bare
    /// `swift test` skips the suite and says why (`scripts/test` installs
    /// it, and fails on any skip).
    static var needsDockerRegistry: Self {
        .enabled(if: TestRegistry.isInstalled, "docker-registry is not installed: run scripts/test, which installs it")
    }
}
