import Glibc

// stdin, stdout and stderr may come non-blocking: `O_NONBLOCK` belongs to
// the open file, which a parent shares with the server when it passes its
// own (Node.js sets it on the pipes it reads). A read that would block then
// fails with `EAGAIN`: taken for the end of input, it stopped the server
// before its first request, and a write that would block spun, or left a
// log line cut.

/// Waits until `fd` is ready for `events` (`POLLIN`, `POLLOUT`), or has
/// hung up or failed, which the next read or write then reports.
public func waitForDescriptor(_ fd: Int32, events: Int16) {
    var entry = pollfd(fd: fd, events: events, revents: 0)
    while poll(&entry, 1, -1) < 0 && errno == EINTR {}
}

/// Whether `error` (an `errno`) says an operation would have blocked.
public func wouldBlock(_ error: Int32) -> Bool { error == EAGAIN || error == EWOULDBLOCK }

/// Writes all of `bytes` to `fd`, waiting when it would block; false when
/// a write fails (the reader has gone).
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    guard var pointer = bytes.baseAddress else { return true }
    var left = bytes.count
    while left > 0 {
        let written = write(fd, pointer, left)
        if written < 0 {
            if errno == EINTR { continue }
            if wouldBlock(errno) {
                waitForDescriptor(fd, events: Int16(POLLOUT))
                continue
            }
            return false
        }
        guard written > 0 else { return false }
        pointer += written
        left -= written
    }
    return true
}
