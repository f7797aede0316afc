import Glibc
import Locking

/// Whether a directory is the user's own: one that no other local user can
/// change, nor swap for another by changing a directory above it. The disk
/// cache is read only from such a directory. What it holds is checked
/// against digests, but a tag's answer or a derived result is checked only
/// against itself, so one planted there by another user would be served as
/// the registry's answer. Downloads are made only in a temporary directory
/// whose place no other user can change: a layer is read back from its file
/// after its bytes were checked, so a file swapped meanwhile would be read.
///
/// The rules are OpenSSH's for the files it trusts (`StrictModes`, with
/// Debian's reading of group permissions):
/// - the directory and every directory below it that the cache uses belong
///   to the user and are writable by no one else: not by others, and by
///   their group only when that group is the user's alone;
/// - every directory above it belongs to the user or to root, and is
///   writable by no one else, unless it is sticky (as `/tmp` is): there no
///   one can rename or remove what another user made.
package enum PrivateDirectory {
    /// What `lstat` says of a directory, as far as these rules read it.
    package struct Status: Equatable, Sendable {
        package var owner: uid_t
        package var group: gid_t
        package var mode: mode_t

        package init(owner: uid_t, group: gid_t, mode: mode_t) {
            self.owner = owner
            self.group = group
            self.mode = mode
        }
    }

    /// The user a directory must belong to.
    package struct User: Sendable {
        package var id: uid_t
        /// Whether `group` has this user as its only member (a user
        /// private group, as Debian gives each user).
        package var ownsGroup: @Sendable (gid_t) -> Bool

        package init(id: uid_t, ownsGroup: @escaping @Sendable (gid_t) -> Bool) {
            self.id = id
            self.ownsGroup = ownsGroup
        }

        /// The process's effective user.
        package static var current: User { User(id: geteuid(), ownsGroup: { isPrivateGroup($0, of: geteuid()) }) }
    }

    /// Why `path`, or one of the directories `inside` it (relative paths),
    /// is not `user`'s own; nil when it and they are. Links are resolved
    /// first: the rules apply to the directories the path leads through.
    package static func problem(_ path: String, inside: [String] = [], user: User = .current) -> String? {
        guard let real = resolved(path) else { return "\(path) cannot be resolved (errno \(errno))" }
        if let problem = problem(above: real, of: path, user: user) { return problem }
        for own in [real] + inside.map({ real + "/" + $0 }) {
            guard let status = status(of: own) else { return "\(own) cannot be read (errno \(errno))" }
            if let problem = problem(own: status, user: user) { return "\(own) \(problem)" }
        }
        return nil
    }

    /// Why making `path` (and the directories above it that are missing)
    /// would write where another user can change it, or nil: the nearest
    /// directory at or above it that exists, and every one above that,
    /// are read as directories above the cache's.
    package static func problemMaking(_ path: String, user: User = .current) -> String? {
        var existing = path
        while true {
            if let real = resolved(existing) {
                guard let status = status(of: real) else { return "\(real) cannot be read (errno \(errno))" }
                if let problem = problem(above: status, user: user) { return "\(real), above \(path), \(problem)" }
                return problem(above: real, of: path, user: user)
            }
            guard errno == ENOENT, existing != "." else { return "\(existing) cannot be resolved (errno \(errno))" }
            if let slash = existing.utf8.lastIndex(of: UInt8(ascii: "/")) {
                existing = slash == existing.utf8.startIndex ? "/" : String(existing[..<slash])
            } else {
                existing = "."
            }
        }
    }

    /// Why a directory above `real` (a path with no links) is not safe for
    /// `user`, or nil; `path` names it in the message.
    private static func problem(above real: String, of path: String, user: User) -> String? {
        // Each prefix of `real` that ends before one of its slashes: `/`,
        // `/home`, `/home/user` for `/home/user/cache` (made from the
        // bytes: joining the names as a `String` cost 160 k instructions).
        let bytes = real.utf8
        for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "/") {
            let directory = offset == 0 ? "/" : String(decoding: bytes.prefix(offset), as: UTF8.self)
            if let problem = status(of: directory).flatMap({ problem(above: $0, user: user) }) {
                return "\(directory), above \(path), \(problem)"
            }
        }
        return nil
    }

    private static func resolved(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Why a directory above the cache's is not safe for `user`, or nil.
    package static func problem(above status: Status, user: User) -> String? {
        guard status.mode & S_IFMT == S_IFDIR else { return "is not a directory" }
        guard status.owner == 0 || status.owner == user.id else {
            return "belongs to user \(status.owner), neither this user (\(user.id)) nor root"
        }
        if status.mode & S_ISVTX != 0 { return nil }
        return writableByOthers(status, user: user)
    }

    /// Why one of the cache's own directories is not `user`'s own, or nil.
    package static func problem(own status: Status, user: User) -> String? {
        guard status.mode & S_IFMT == S_IFDIR else { return "is not a directory" }
        guard status.owner == user.id else { return "belongs to user \(status.owner), not this user (\(user.id))" }
        return writableByOthers(status, user: user)
    }

    private static func writableByOthers(_ status: Status, user: User) -> String? {
        if status.mode & S_IWOTH != 0 { return "is writable by every user" }
        if status.mode & S_IWGRP != 0 && !user.ownsGroup(status.group) {
            return "is writable by group \(status.group), which has other members"
        }
        return nil
    }

    private static func status(of path: String) -> Status? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Status(owner: info.st_uid, group: info.st_gid, mode: info.st_mode)
    }

    /// Whether `user` is the only member of `group`: the group is the
    /// user's primary group or lists the user, and no other user has it as
    /// primary group or is listed in it. Read from the system's user
    /// database (`getpwent`, `getgrgid_r`); only asked of a group-writable
    /// directory.
    package static func isPrivateGroup(_ group: gid_t, of user: uid_t) -> Bool {
        var name: String?
        var members = 0
        userDatabase.lock()
        defer { userDatabase.unlock() }
        setpwent()
        defer { endpwent() }
        while let entry = getpwent() {
            if entry.pointee.pw_uid == user { name = String(cString: entry.pointee.pw_name) }
            guard entry.pointee.pw_gid == group else { continue }
            guard entry.pointee.pw_uid == user else { return false }
            members += 1
        }
        guard let name else { return false }
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 1 << 16)
        guard getgrgid_r(group, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return false }
        var listed = entry.gr_mem
        while let member = listed?.pointee {
            guard String(cString: member) == name else { return false }
            members += 1
            listed = listed?.advanced(by: 1)
        }
        return members > 0
    }

    /// `getpwent` walks one cursor for the whole process.
    private static let userDatabase = Lock()
}
