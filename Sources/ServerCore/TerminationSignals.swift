import CSystem

/// SIGTERM and SIGINT, caught by a handler that only notes them and wakes
/// the session's own thread (`ocirpc_termination_*` in CSystem). Unlike
/// libdispatch's signal sources, taking a signal needs no thread to start:
/// a server whose limit on tasks shrank while it ran still ends on one.
enum TerminationSignals {
    /// Catches both signals from now on; false when they cannot be caught.
    static func install() -> Bool { ocirpc_termination_signals_install() == 0 }

    /// Wakes `waitForSignalOrWake` (the session ended otherwise).
    static func wake() { ocirpc_termination_wake() }

    /// The signal caught since the last look, if any, without waiting.
    static func takeSignal() -> Int32? {
        let number = ocirpc_termination_take_signal()
        return number == 0 ? nil : number
    }

    /// Waits for a signal or a wake, and returns the signal caught
    /// meanwhile, if any.
    static func waitForSignalOrWake() -> Int32? {
        ocirpc_termination_wait()
        return takeSignal()
    }
}
