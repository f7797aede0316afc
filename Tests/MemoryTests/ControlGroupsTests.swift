import Foundation
import Testing

@testable import Memory

@Suite struct ControlGroupsTests {
    @Test func theTightestGroupForTasksOnTheWayUpIsTheOne() throws {
        let root = try cgroupHierarchy([
            "pids.max": "max\n", "pids.current": "900\n",
            "a/pids.max": "1000\n", "a/pids.current": "990\n",
            "a/b/pids.max": "max\n", "a/b/pids.current": "3\n",
            "pids/c/pids.max": "64\n", "pids/c/pids.current": "40\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let v2 = try #require(ControlGroups.taskRoom(groups: "0::/a/b\n", root: root))
        #expect(v2.directory == root + "/a" && v2.room == 10 && v2.max == 1000 && v2.current == 990)
        let v1 = try #require(ControlGroups.taskRoom(groups: "3:pids:/c\n0::/\n", root: root))
        #expect(v1.directory == root + "/pids/c" && v1.room == 24)
        #expect(ControlGroups.taskRoom(groups: "0::/\n", root: root) == nil)
        #expect(ControlGroups.taskRoom(groups: "3:memory:/c\n", root: root) == nil)
    }

    @Test func aGroupOverItsTaskLimitHasNoRoom() throws {
        let root = try cgroupHierarchy(["x/pids.max": "5\n", "x/pids.current": "9\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(ControlGroups.taskRoom(groups: "0::/x\n", root: root)?.room == 0)
    }

    @Test func aGroupIsFoundByItsControllerAmongOthersAndEachAncestorToo() {
        let groups = "7:cpu,cpuacct:/svc\n5:memory,pids:/a/b\n0::/u\n"
        #expect(
            ControlGroups.holding(controller: "pids", groups: groups, root: "/r").map(\.directory) == [
                "/r/pids/a/b", "/r/pids/a", "/r/pids", "/r/u", "/r", "/r/unified/u", "/r/unified",
            ])
        #expect(ControlGroups.holding(controller: "cpu", groups: "7:cpuset:/x\n", root: "/r").isEmpty)
    }
}
