import CSystem

/// Tells ThreadSanitizer, when the process runs under it, that a value
/// handed over by resuming a continuation is seen by the task that awaited
/// it. The Swift runtime says so only when the task was suspended before
/// the resume. When the resume comes first (a fast answer), the task goes
/// on with no sign of it, and the sanitizer reports everything the
/// resuming thread wrote as a data race (a twelve-line program shows it:
/// `bench/README.md`, "Races the sanitizer could not see"). The resuming
/// side calls `release` just before `resume`, and the task calls `acquire`
/// just after its await, both on the same object. Outside the sanitizer
/// each is a test of a null function pointer.
package enum SanitizerHandOff {
    /// An object to hand over with, where the hand-off has none of its own.
    package final class Point: Sendable {
        package init() {}
    }

    /// Before resuming: what this thread wrote is handed over with `object`.
    @inline(__always)
    package static func release(_ object: AnyObject) {
        ocirpc_sanitizer_release(UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()))
    }

    /// After the await: this task sees what was handed over with `object`.
    @inline(__always)
    package static func acquire(_ object: AnyObject) {
        ocirpc_sanitizer_acquire(UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()))
    }
}
