import Glibc

/// What a child process uses, read from `/proc`: for tests that bound
/// memory or check that work stopped.
public enum ProcessUsage {
    /// Resident memory in KiB, or -1.
    public static func rssKiB(_ pid: Int32) -> Int { status("VmRSS:", of: pid) }

    /// The most resident memory the process has had, in KiB, or -1.
    public static func peakRSSKiB(_ pid: Int32) -> Int { status("VmHWM:", of: pid) }

    /// A size in KiB from `/proc/PID/status`, or -1.
    private static func status(_ field: String, of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) })
        else { return -1 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
    }

    /// User plus system CPU time in seconds, or -1.
    public static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return -1 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return -1 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// Runs `body` and returns its result with the CPU time the calling thread
/// spent in it. Unlike time on a clock, it is not stretched by the other
/// tests sharing the machine's cores: for tests that tell linear work from
/// quadratic work by how long it takes.
public func measuringThreadCPUTime<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    func now() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
    let start = now()
    let result = try body()
    return (result, now() - start)
}
