import Foundation
import Testing

@testable import Memory

@Suite struct ContainerMemoryLimitTests {
    @Test func cgroupV1sLimitIsReadAndItsNoLimitIsNone() throws {
        let root = try cgroupHierarchy([
            "memory/memory.limit_in_bytes": "9223372036854771712\n",
            "memory/app/memory.limit_in_bytes": "536870912\n",
            "memory/free/memory.limit_in_bytes": "9223372036854771712\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(ContainerMemoryLimit.read(groups: "5:cpu:/app\n4:memory:/app\n", root: root) == 512 << 20)
        #expect(ContainerMemoryLimit.read(groups: "4:memory:/free\n", root: root) == nil)
        #expect(ContainerMemoryLimit.read(groups: "4:memory:/\n", root: root) == nil)
    }

    @Test func cgroupV2sLowestLimitOnTheWayUpIsTheOne() throws {
        let root = try cgroupHierarchy([
            "memory.max": "max\n",
            "a/memory.max": "1073741824\n",
            "a/b/memory.max": "max\n",
            "a/c/memory.max": "268435456\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(ContainerMemoryLimit.read(groups: "0::/a/b\n", root: root) == 1 << 30)
        #expect(ContainerMemoryLimit.read(groups: "0::/a/c\n", root: root) == 256 << 20)
        #expect(ContainerMemoryLimit.read(groups: "0::/\n", root: root) == nil)
    }

    @Test func aHybridMountsV2UnderUnified() throws {
        let root = try cgroupHierarchy(["unified/svc/memory.max": "805306368\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(ContainerMemoryLimit.read(groups: "4:memory:/\n0::/svc\n", root: root) == 768 << 20)
    }

    @Test func nothingReadableIsNoLimit() throws {
        let root = try cgroupHierarchy(["memory/x/memory.limit_in_bytes": "lots\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(ContainerMemoryLimit.read(groups: nil, root: root) == nil)
        #expect(ContainerMemoryLimit.read(groups: "garbage", root: root) == nil)
        #expect(ContainerMemoryLimit.read(groups: "4:memory:/x\n", root: root) == nil)
        #expect(ContainerMemoryLimit.read(groups: "4:memory:/absent\n", root: root) == nil)
    }

    @Test(
        arguments: [
            (nil, 2 << 30), (512 << 20, 256 << 20), (8 << 30, 2 << 30), (3 << 30, 3 << 29), (20 << 20, 16 << 20),
        ] as [(Int?, Int)])
    func theBudgetsDefaultIsHalfAContainersLimitWhenLower(container: Int?, budget: Int) {
        #expect(MemoryBudget.defaultLimit(within: container) == budget)
    }
}
