import Foundation
import Glibc
import Logging
import Registry
import Testing

@testable import DiskCaching

@Suite struct PrivateDirectoryTests {
    typealias Status = PrivateDirectory.Status

    static let me: uid_t = 1000
    static let myGroup: gid_t = 1000
    static let sharedGroup: gid_t = 100
    static let user = PrivateDirectory.User(id: me, ownsGroup: { $0 == myGroup })

    static func directory(_ owner: uid_t, _ group: gid_t, _ permissions: mode_t) -> Status {
        Status(owner: owner, group: group, mode: S_IFDIR | permissions)
    }

    @Test(arguments: [
        (directory(me, sharedGroup, 0o700), true),
        (directory(me, sharedGroup, 0o755), true),
        (directory(me, myGroup, 0o775), true),
        (directory(me, sharedGroup, 0o775), false),
        (directory(me, sharedGroup, 0o757), false),
        (directory(me, sharedGroup, 0o1777), false),
        (directory(0, 0, 0o700), false),
        (directory(4242, sharedGroup, 0o700), false),
        (Status(owner: me, group: myGroup, mode: S_IFLNK | 0o777), false),
    ])
    func theCachesOwnDirectoriesMustBeTheUsersAndWritableByNoOneElse(status: Status, accepted: Bool) {
        #expect((PrivateDirectory.problem(own: status, user: Self.user) == nil) == accepted)
    }

    @Test(arguments: [
        (directory(0, 0, 0o755), true),
        (directory(me, sharedGroup, 0o755), true),
        (directory(0, 0, 0o1777), true),
        (directory(me, myGroup, 0o775), true),
        (directory(0, sharedGroup, 0o775), false),
        (directory(0, sharedGroup, 0o1775), true),
        (directory(0, 0, 0o777), false),
        (directory(4242, sharedGroup, 0o755), false),
        (directory(4242, sharedGroup, 0o1777), false),
        (Status(owner: 0, group: 0, mode: S_IFREG | 0o755), false),
    ])
    func aDirectoryAboveMustBeTheUsersOrRootsAndWritableByNoOneElseUnlessSticky(status: Status, accepted: Bool) {
        #expect((PrivateDirectory.problem(above: status, user: Self.user) == nil) == accepted)
    }

    // MARK: - On disk

    /// A fresh directory of this user's, 0700, under the temporary directory.
    private static func freshDirectory() throws -> String {
        let path = temporaryCachePath()
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }

    private static let thisUser = PrivateDirectory.User(id: geteuid(), ownsGroup: { _ in false })

    @Test func aCacheInADirectoryOfTheUsersOwnIsOpened() throws {
        let parent = try Self.freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        #expect(DiskCache.open(directory: parent + "/cache", logger: .disabled) != nil)
        #expect(
            PrivateDirectory.problem(parent + "/cache", inside: DiskCache.ownDirectories, user: Self.thisUser) == nil)
    }

    @Test(arguments: ["", "/ocirpc/v2/journals", "/blobs/sha256"])
    func aCacheDirectoryEveryUserCanWriteIsNotOpened(writable: String) throws {
        let parent = try Self.freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let cache = parent + "/cache"
        #expect(DiskCache.open(directory: cache, logger: .disabled) != nil)
        #expect(chmod(cache + writable, 0o777) == 0)
        #expect(DiskCache.open(directory: cache, logger: .disabled) == nil)
        let problem = PrivateDirectory.problem(cache, inside: DiskCache.ownDirectories, user: Self.thisUser)
        #expect(problem?.contains("writable by every user") == true, "\(problem ?? "nil")")
    }

    @Test func aCacheUnderADirectoryEveryUserCanWriteIsNotOpenedUnlessItIsSticky() throws {
        let parent = try Self.freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        #expect(chmod(parent, 0o777) == 0)
        #expect(DiskCache.open(directory: parent + "/cache/below", logger: .disabled) == nil)
        #expect(!FileManager.default.fileExists(atPath: parent + "/cache"), "nothing is made there")
        #expect(chmod(parent, 0o1777) == 0)
        #expect(DiskCache.open(directory: parent + "/cache", logger: .disabled) != nil)
    }

    @Test func aLinkIsJudgedByWhereItLeads() throws {
        let parent = try Self.freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        try FileManager.default.createDirectory(atPath: parent + "/open/cache", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: parent + "/link", withDestinationPath: parent + "/open/cache")
        #expect(DiskCache.open(directory: parent + "/link", logger: .disabled) != nil)
        #expect(chmod(parent + "/open", 0o777) == 0)
        #expect(DiskCache.open(directory: parent + "/link", logger: .disabled) == nil)
    }

    @Test func aCacheDirectoryOfAnotherUserIsNotOpened() throws {
        let parent = try Self.freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let other = PrivateDirectory.User(id: geteuid() &+ 4242, ownsGroup: { _ in false })
        let cache = DiskCache.open(
            directory: parent + "/cache", logger: .disabled,
            journalRecheckInterval: DiskCache.defaultJournalRecheckInterval, owner: other)
        #expect(cache == nil)
        let problem = PrivateDirectory.problem(parent + "/cache", user: other)
        #expect(problem?.contains("belongs to user \(geteuid())") == true, "\(problem ?? "nil")")
    }

    @Test func aDirectoryItsGroupCanWriteIsTheUsersOwnOnlyWhenTheGroupIsTheUsersAlone() throws {
        let parent = try Self.freshDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        #expect(chmod(parent, 0o770) == 0)
        let alone = PrivateDirectory.User(id: geteuid(), ownsGroup: { _ in true })
        #expect(PrivateDirectory.problem(parent, user: alone) == nil)
        #expect(PrivateDirectory.problem(parent, user: Self.thisUser)?.contains("writable by group") == true)
    }

    /// The user database's answer, checked against the files it is read
    /// from here (`/etc/passwd`, `/etc/group`) for every group they list.
    @Test func aGroupIsTheUsersAloneWhenNoOtherUserHasIt() throws {
        let passwd = try String(contentsOfFile: "/etc/passwd", encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: ":", omittingEmptySubsequences: false) }.filter { $0.count >= 4 }
        let groups = try String(contentsOfFile: "/etc/group", encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: ":", omittingEmptySubsequences: false) }.filter { $0.count >= 4 }
        let users = passwd.compactMap { fields in UInt32(fields[2]).map { (name: String(fields[0]), uid: $0) } }
        var checked = 0
        for user in users.prefix(8) {
            for group in groups {
                guard let gid = UInt32(group[2]) else { continue }
                var members = Set(passwd.filter { UInt32($0[3]) == gid }.map { String($0[0]) })
                let listed = group[3].split(separator: ",").map(String.init)
                members.formUnion(listed)
                let expected = members == [user.name]
                #expect(
                    PrivateDirectory.isPrivateGroup(gid, of: user.uid) == expected,
                    "group \(group[0]), user \(user.name)")
                checked += 1
            }
        }
        #expect(checked > 0)
        #expect(!PrivateDirectory.isPrivateGroup(987_654, of: geteuid()))
    }
}
