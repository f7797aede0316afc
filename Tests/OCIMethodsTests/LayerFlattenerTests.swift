import Reasons
import Archive
import JSON
import Memory
import Testing
import TestFixtures
import YAML
@testable import OCIMethods

@Suite struct LayerFlattenerTests {
    /// Applies layers given bottom first (as a manifest lists them).
    private func flatten(_ layers: [TarBuilder], paths: [String]) throws -> JSONValue {
        try LayerFlattener.files(ofLayers: layers.reversed().map(\.archive), paths: paths, maxEntryBytes: 1 << 20).files
    }

    @Test func laterLayersWinAndWhiteoutsAndOpaqueDirectoriesHideEarlierFiles() throws {
        var bottom = TarBuilder()
        bottom.file("policy/keep.yaml", "v: bottom")
        bottom.file("policy/override.yaml", "v: bottom")
        bottom.file("policy/deleted.json", #"{"v":"bottom"}"#)
        bottom.file("opaque/gone.yaml", "v: bottom")
        var middle = TarBuilder()
        middle.file("policy/.wh.deleted.json", "")
        middle.file("opaque/.wh..wh..opq", "")
        middle.file("opaque/fresh.yml", "v: middle")
        var top = TarBuilder()
        top.file("./policy/override.yaml", "v: top")
        let result = try flatten([bottom, middle, top], paths: ["policy", "opaque"])
        let expected: JSONValue = [
            "policy/override.yaml": ["v": "top"],
            "opaque/fresh.yml": ["v": "middle"],
            "policy/keep.yaml": ["v": "bottom"],
        ]
        #expect(Set(result.objectValue?.keys ?? []) == Set(expected.objectValue!.keys))
        for key in expected.objectValue!.keys { #expect(result[key] == expected[key], "\(key)") }
    }

    /// An upper layer's entry that is not a directory (a file, a link)
    /// where a lower layer had a directory: a runtime replaces the
    /// directory with it, so nothing of the lower directory is there. A
    /// directory above a directory hides nothing of it.
    @Test(arguments: ["file", "symlink", "directory"])
    func anUpperNonDirectoryHidesTheLowerDirectoryUnderIt(upper: String) throws {
        var bottom = TarBuilder()
        bottom.file("etc/policy.yaml", "allowed: true")
        var top = TarBuilder()
        switch upper {
        case "file": top.file("etc", "not a directory")
        case "symlink": top.symlink("etc", to: "/tmp/elsewhere")
        default: top.directory("etc")
        }
        let result = try flatten([bottom, top], paths: ["etc"])
        #expect(result == (upper == "directory" ? ["etc/policy.yaml": ["allowed": true]] : [:]))
    }

    /// A wanted file stored sparse is an error, not an absence: its data
    /// is a map of holes, which is not read. One that is not wanted is
    /// passed over.
    @Test func aWantedSparseFileIsAnErrorNotAnAbsence() throws {
        var layer = TarBuilder()
        layer.paxHeader(
            TarBuilder.paxRecord("GNU.sparse.major", "1") + TarBuilder.paxRecord("GNU.sparse.minor", "0")
                + TarBuilder.paxRecord("GNU.sparse.name", "etc/policy.yaml")
                + TarBuilder.paxRecord("GNU.sparse.realsize", "1"))
        layer.file("GNUSparseFile.0/x", Array("1\n0\n1\n".utf8) + [UInt8](repeating: 0, count: 506) + Array("z".utf8))
        #expect { try flatten([layer], paths: ["etc"]) } throws: {
            ($0 as? ArchiveError)?.message.contains("sparse") == true
        }
        #expect(try flatten([layer], paths: ["other"]) == [:])
    }

    @Test func directoriesMatchCaseInsensitivelyAndOnlyYAMLOrJSONExtensions() throws {
        var layer = TarBuilder()
        layer.file("Data/a.YAML", "a: 1")
        layer.file("data/b.Json", #"{"b":2}"#)
        layer.file("data/c.txt", "c: 3")
        layer.file("data/noext", "d: 4")
        layer.file("data/sub/e.yaml", "e: 5")
        let result = try flatten([layer], paths: ["/DATA/"])
        #expect(result == ["Data/a.YAML": ["a": 1], "data/b.Json": ["b": 2]])
    }

    @Test func unparseableFilesAreSkippedButStillHideLowerOnes() throws {
        var bottom = TarBuilder()
        bottom.file("d/x.yaml", "ok: true")
        var top = TarBuilder()
        top.file("d/x.yaml", "bad: [unclosed")
        #expect(try flatten([bottom, top], paths: ["d"]) == [:])
    }

    @Test func aWhitedOutDirectoryHidesWhatWasInside() throws {
        var bottom = TarBuilder()
        bottom.file("d/sub/x.yaml", "x: 1")
        // (not `y:`, which go-yaml v2 reads as the key `true`)
        bottom.file("d/z.yaml", "z: 1")
        var top = TarBuilder()
        top.file("d/.wh.sub", "")
        let result = try flatten([bottom, top], paths: ["d/sub", "d"])
        #expect(result == ["d/z.yaml": ["z": 1]], "\(result.jsonText)")
    }
}

/// Layers made to exhaust the flattener.
@Suite struct HostileLayerTests {
    /// Where an entry is written is found by walking its directory through
    /// the layer's links, once for each link met: each walk goes through
    /// each name once. 200 entries 2,040 names deep under a link took 236 s
    /// (release build) when each walk joined and cleaned the names before
    /// each name anew.
    @Test func entriesDeepUnderALinkArePlacedInLinearTime() async throws {
        // The same 200 entries, written under `d` directly and through the
        // link `a -> d`: placing them through the link walks each name once
        // more, through a namespace of the layer (8-20 times as long in a
        // debug build, as other work shares the machine), not the thousands
        // of times a walk quadratic in the names takes. Thread CPU time, the
        // least of three rounds taken in turn, so that a slow moment is
        // not read as a slow walk.
        let deep = String(repeating: "d/", count: 2040)
        @Sendable func flatten(through link: Bool) -> Result<(JSONValue, Duration), any Error> {
            Result {
                var layer = TarBuilder()
                if link { layer.symlink("a", to: "d") }
                let top = link ? "a" : "d"
                for i in 0..<200 { layer.file("\(top)/\(deep)f\(i)", "x") }
                layer.file("\(top)/\(deep)p.yaml", "v: 1")
                var flattener = LayerFlattener(paths: ["d/\(deep)"], maxEntryBytes: 1 << 20)
                let ((), elapsed) = try measuringThreadCPUTime {
                    try flattener.apply(TarReader(MemoryByteStream(layer.archive)))
                }
                return (try flattener.result(), elapsed)
            }
        }
        let expected = JSONValue.object(JSONObject([.init(key: "d/\(deep)p.yaml", value: ["v": 1])]))
        var direct = Duration.seconds(1000), linked = Duration.seconds(1000)
        for _ in 0..<3 {
            let once = try await onThreadOfItsOwn { flatten(through: false) }.get()
            let throughLink = try await onThreadOfItsOwn { flatten(through: true) }.get()
            #expect(once.0 == expected && throughLink.0 == expected)
            direct = min(direct, once.1)
            linked = min(linked, throughLink.1)
        }
        print("200 entries 2,040 names deep: \(direct) written directly, \(linked) through a link")
        #expect(linked < direct * 100)
    }

    /// A million entries, each written through 40 links of 2,000 names,
    /// would walk 80 billion names: what one call walks through links is
    /// bounded, and past it the call fails (never an entry left out).
    @Test func whatACallWalksThroughLinksIsBounded() throws {
        var layer = TarBuilder()
        layer.directory("d")
        // Targets of 46 names (tar's 100 bytes of link target).
        let detour = String(repeating: "./", count: 45)
        for hop in 0..<39 { layer.symlink("a\(hop)", to: detour + (hop == 38 ? "d" : "a\(hop + 1)")) }
        for i in 0..<100 { layer.file("a0/f\(i).yaml", "v: \(i)") }
        // Each entry walks 39 targets of 46 names, and its own names on
        // each walk: some 200,000 names for the 100.
        var bounded = LayerFlattener(paths: ["d"], maxEntryBytes: 1 << 20, maxLinkWalkSteps: 100_000)
        #expect { try bounded.apply(TarReader(MemoryByteStream(layer.archive))) } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
        }
        // Within the budget every entry is written where the links lead.
        var flattener = LayerFlattener(paths: ["d"], maxEntryBytes: 1 << 20)
        try flattener.apply(TarReader(MemoryByteStream(layer.archive)))
        #expect(try flattener.result().objectValue?.count == 100)
        #expect(try flattener.result()["d/f7.yaml"] == ["v": 7])
    }

    @Test func deepPathsAreCheckedInLinearTime() async throws {
        // 2,000 entries each 4 KiB deep under a whited-out directory: the
        // ancestor check walks each path once, so flattening costs about
        // what reading the archive costs (1.25 times); a copy per ancestor,
        // as before, is some 8 GB of copying, 15 times the reading or more.
        // Thread CPU time, the least of three rounds taken in turn. Seconds
        // of work: on a thread of its own, so the tests' task pool stays
        // free for the others.
        let outcome = await onThreadOfItsOwn {
            Result { () throws -> (JSONValue, Duration, Duration) in
                var upper = TarBuilder()
                upper.file(".wh.a", "")
                var lower = TarBuilder()
                let deep = String(repeating: "a/", count: 2000)
                for i in 0..<2000 { lower.file(deep + "f\(i).yaml", "v: 1") }
                lower.file("policy/kept.yaml", "v: 2")
                var result: JSONValue = nil
                var flattening = Duration.seconds(1000), reading = Duration.seconds(1000)
                for _ in 0..<3 {
                    var flattener = LayerFlattener(paths: ["policy", deep], maxEntryBytes: 1 << 20)
                    try flattener.apply(TarReader(MemoryByteStream(upper.archive)))
                    let ((), flattened) = try measuringThreadCPUTime {
                        try flattener.apply(TarReader(MemoryByteStream(lower.archive)))
                    }
                    let ((), read) = try measuringThreadCPUTime {
                        let reader = TarReader(MemoryByteStream(lower.archive))
                        while try reader.next() != nil {}
                    }
                    result = try flattener.result()
                    flattening = min(flattening, flattened)
                    reading = min(reading, read)
                }
                return (result, flattening, reading)
            }
        }
        let (result, flattening, reading) = try outcome.get()
        print("2,000 deep paths: \(flattening) of CPU to flatten, \(reading) to read")
        #expect(result == ["policy/kept.yaml": ["v": 2]])
        #expect(flattening < reading * 5)
    }

    @Test func theNamesKeptAcrossLayersAreBounded() throws {
        var layer = TarBuilder()
        for i in 0..<100 { layer.file("dir/file-\(i)", "x") }
        // 100 entries of 10 or 11 bytes of name, and what each costs
        // besides; the 101 nodes of the namespace (`dir` and its files), and
        // the hash of the one directory above them.
        let needed =
            100 * RememberedEntries.entryOverheadBytes + 10 * 10 + 90 * 11 + 101 * RememberedEntries.nodeOverheadBytes
            + RememberedEntries.hashOverheadBytes
        var small = LayerFlattener(paths: ["dir"], maxEntryBytes: 1 << 20, maxTrackedNameBytes: needed - 1)
        #expect { try small.apply(TarReader(MemoryByteStream(layer.archive))) } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
        }
        var enough = LayerFlattener(paths: ["dir"], maxEntryBytes: 1 << 20, maxTrackedNameBytes: needed)
        try enough.apply(TarReader(MemoryByteStream(layer.archive)))
    }

    /// An entry of a deep name adds a node to the namespace for each name
    /// in its path that no entry before it had: entries of distinct deep
    /// paths are counted by those nodes, not by their names alone (8,000
    /// entries of 2,040 names each held 3.2 GB while they were counted as
    /// 36 MB).
    @Test func theNodesOfDeepPathsAreCounted() throws {
        var layer = TarBuilder()
        let deep = String(repeating: "d/", count: 100)
        for i in 0..<50 { layer.file("x\(i)/\(deep)f.yaml", "a: 1") }
        layer.symlink("x0/\(deep)link.yaml", to: "f.yaml")
        let archive = layer.archive
        // Counted by names and entries alone, the layer takes ~21 KB; the
        // hashes of its 5,050 directories take ~200 KB more, and its nodes
        // in a namespace ~1 MB more: room for all but the nodes.
        let namesAndEntries = 51 * (210 + RememberedEntries.entryOverheadBytes)
        let hashes = 50 * 101 * RememberedEntries.hashOverheadBytes
        let limit = 2 * (namesAndEntries + hashes)
        let wanted = "x0/\(deep)link.yaml"
        var flattener = LayerFlattener(
            paths: [ArchivePath.directory(wanted)], maxEntryBytes: 1 << 20, maxTrackedNameBytes: limit)
        #expect { try flattener.apply(TarReader(MemoryByteStream(archive))) } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
        }
        // `blob_files` keeps the directories' hashes in its first pass (past
        // room for names alone)...
        #expect {
            try BlobFiles.files(
                ofArchive: archive, paths: ["x1/\(deep)f.yaml"], maxEntryBytes: 1 << 20,
                maxTrackedBytes: 2 * namesAndEntries)
        } throws: { ($0 as? ArchiveError)?.reason == .archiveTooLarge }
        // ... and reads the namespace for the link asked for.
        #expect {
            try BlobFiles.files(
                ofArchive: archive, paths: [wanted], maxEntryBytes: 1 << 20, maxTrackedBytes: limit)
        } throws: { ($0 as? ArchiveError)?.reason == .archiveTooLarge }
        // With room for every node (50 paths of 102 names, the root), both read it.
        let nodes = (50 * 102 + 2) * RememberedEntries.nodeOverheadBytes
        let flattened = try LayerFlattener.files(
            ofLayers: [archive], paths: [ArchivePath.directory(wanted)], maxEntryBytes: 1 << 20,
            maxTrackedNameBytes: 2 * (nodes + limit)
        ).files
        // The directory's file, and the link to it.
        #expect(flattened.objectValue?.count == 2 && flattened[wanted] == ["a": 1])
        let read = try BlobFiles.files(
            ofArchive: archive, paths: [wanted], maxEntryBytes: 1 << 20, maxTrackedBytes: 2 * (nodes + limit))
        #expect(read == .object(JSONObject([.init(key: wanted, value: ["a": 1])])))
    }

    /// `blob_files` remembers something of every entry of a blob (its
    /// path's hash, its links), so what it remembers is bounded as
    /// `image_files` bounds it, on a blob with no link as on one with.
    @Test func theEntriesABlobFilesCallRemembersAreBounded() throws {
        var blob = TarBuilder()
        for i in 0..<100 { blob.file("dir/file-\(i)", "x") }
        // The first pass keeps no namespace: each entry, and the hash of `dir`.
        let needed =
            100 * RememberedEntries.entryOverheadBytes + 10 * 10 + 90 * 11 + RememberedEntries.hashOverheadBytes
        #expect {
            try BlobFiles.files(
                ofArchive: blob.archive, paths: ["dir/file-1"], maxEntryBytes: 1 << 20, maxTrackedBytes: needed - 1)
        } throws: { ($0 as? ArchiveError)?.reason == .archiveTooLarge }
        let files = try BlobFiles.files(
            ofArchive: blob.archive, paths: ["dir/file-1"], maxEntryBytes: 1 << 20, maxTrackedBytes: needed)
        #expect(files.objectValue?.keys.map { $0 } == ["dir/file-1"])
    }

    /// What a call remembers of every entry is taken from its memory share
    /// as it grows: calls on archives of millions of entries, each within
    /// its own bound, fail once together they would pass the memory budget
    /// (retryable), never the process.
    @Test func theEntriesACallRemembersAreTakenFromItsMemoryShare() throws {
        var layer = TarBuilder()
        for i in 0..<1_000 { layer.file("dir/file-\(i)", "x") }
        layer.symlink("dir/link.yaml", to: "file-1")
        let archive = layer.archive
        // 1,000 entries of 10 to 12 bytes of name, the overhead of each and
        // of its node in a namespace.
        let needed =
            1_000 * (RememberedEntries.entryOverheadBytes + RememberedEntries.nodeOverheadBytes) + 10 * 10 + 90 * 11
            + 900 * 12
        func refusedForMemory(_ error: any Error) -> Bool {
            (error as? ArchiveError)?.reason == MemoryLimitExceeded.reason
        }
        for limit in [needed / 2, 4 * needed] {
            let budget = MemoryBudget(limit: limit)
            let share = MemoryShare(of: budget)
            let flatten = {
                try MemoryShare.$current.withValue(share) {
                    var flattener = LayerFlattener(paths: ["dir"], maxEntryBytes: 1 << 20)
                    try flattener.apply(TarReader(MemoryByteStream(archive)))
                    return try flattener.result()
                }
            }
            // The link asked for makes `blob_files` read the namespace too.
            let read = {
                try MemoryShare.$current.withValue(share) {
                    try BlobFiles.files(ofArchive: archive, paths: ["dir/link.yaml"], maxEntryBytes: 1 << 20)
                }
            }
            if limit < needed {
                #expect { try flatten() } throws: { refusedForMemory($0) }
                #expect { try read() } throws: { refusedForMemory($0) }
                #expect(budget.heldBytes <= limit)
                continue
            }
            _ = try flatten()
            #expect(share.heldBytes >= needed)
            _ = try read()
            // The first pass (each entry) and the namespace (each entry and node).
            #expect(share.heldBytes >= 2 * needed + 1_000 * RememberedEntries.entryOverheadBytes)
        }
    }

    /// Each file is under the entry limit, but a layer may hold thousands:
    /// what the files kept hold together is bounded, and past it the call
    /// fails (never a file left out, which would read as absent).
    @Test func theFilesKeptTogetherAreBounded() throws {
        var layer = TarBuilder()
        for i in 0..<100 { layer.file("dir/file-\(i).json", "[1,2,3]") }
        var small = LayerFlattener(paths: ["dir"], maxEntryBytes: 1 << 20, maxKeptBytes: 1000)
        #expect { try small.apply(TarReader(MemoryByteStream(layer.archive))) } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
        }
        var enough = LayerFlattener(paths: ["dir"], maxEntryBytes: 1 << 20, maxKeptBytes: 1 << 20)
        try enough.apply(TarReader(MemoryByteStream(layer.archive)))
        #expect(try enough.result().objectValue?.count == 100)
        let paths = Set((0..<100).map { "dir/file-\($0).json" })
        #expect {
            try BlobFiles.files(ofArchive: layer.archive, paths: paths, maxEntryBytes: 1 << 20, maxKeptBytes: 1000)
        } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
        }
        let read = try BlobFiles.files(
            ofArchive: layer.archive, paths: paths, maxEntryBytes: 1 << 20, maxKeptBytes: 1 << 20)
        #expect(read.objectValue?.count == 100)
    }

    @Test func whatTheFilesHoldIsTakenFromTheCallsShareAndAnEntryOnlyWhileItIsRead() throws {
        // 10,000 bytes of text that parse to `[1]`.
        let padded = "[1" + String(repeating: " ", count: 9_997) + "]"
        var layer = TarBuilder()
        layer.file("dir/a.json", padded)
        layer.file("dir/b.json", "[2]")
        let archive = layer.archive
        let paths: Set<String> = ["dir/a.json", "dir/b.json"]

        // Read, an entry holds its bytes and the text they compact to,
        // twice: 30,000.
        for limit in [25_000, 40_000] {
            let budget = MemoryBudget(limit: limit)
            let share = MemoryShare(of: budget)
            let read = {
                try MemoryShare.$current.withValue(share) {
                    try BlobFiles.files(ofArchive: archive, paths: paths, maxEntryBytes: 1 << 20)
                }
            }
            let flatten = {
                try MemoryShare.$current.withValue(share) {
                    var flattener = LayerFlattener(paths: ["dir"], maxEntryBytes: 1 << 20)
                    try flattener.apply(TarReader(MemoryByteStream(archive)))
                    return try flattener.result()
                }
            }
            // Each call also remembers the entries it has read (a few
            // hundred bytes each, `theEntriesACallRemembersAreTakenFromItsMemoryShare`),
            // until it ends; what it parses is given back.
            let remembered = 4 * (RememberedEntries.entryOverheadBytes + RememberedEntries.nodeOverheadBytes)
            if limit < 3 * padded.utf8.count {
                // The entry's bytes do not fit while it is read.
                #expect { try read() } throws: { $0 is MemoryLimitExceeded }
                #expect { try flatten() } throws: { $0 is MemoryLimitExceeded }
                #expect(share.heldBytes < remembered)
                #expect(budget.heldBytes == share.heldBytes)
                continue
            }
            let files = try read()
            #expect(files.objectValue?.count == 2)
            // What is kept is what the values hold, not the text they came from.
            let kept = (files["dir/a.json"]?.memoryFootprint ?? 0) + (files["dir/b.json"]?.memoryFootprint ?? 0)
            #expect(kept > 0 && kept < 1000)
            #expect(share.heldBytes > kept && share.heldBytes < kept + remembered)
            let afterRead = share.heldBytes
            _ = try flatten()
            #expect(share.heldBytes > afterRead + kept && share.heldBytes < afterRead + kept + remembered)
            #expect(budget.heldBytes == share.heldBytes)
        }
    }

    @Test func cleanPathsAreRecognisedAndOthersCleaned() {
        for path in ["a", "a/b", "a.b/.c/..d/...", ".wh.x"] {
            #expect(ArchivePath.isClean(path), "\(path)")
            #expect(ArchivePath.clean(path) == path)
        }
        let cases = [
            "": ".", "/": ".", "./a": "a", "a/": "a", "a//b": "a/b", "a/./b": "a/b", "a/../b": "b",
            "..": ".", "/etc/x": "etc/x", "a/b/..": "a", ".": ".",
        ]
        for (path, clean) in cases {
            #expect(!ArchivePath.isClean(path), "\(path)")
            #expect(ArchivePath.clean(path) == clean, "\(path)")
            // A walk's rooted paths take a shorter way to the same answer.
            #expect(ArchivePath.clean(rooted: path) == clean, "\(path)")
            #expect(ArchivePath.clean(rooted: "/" + path) == clean, "/\(path)")
        }
    }

    /// An entry is written where containerd's `RootPath` puts it: a link's
    /// target joined to the directory it is in and cleaned (`..` first),
    /// except a link at the root, whose target is walked name by name (a
    /// link in it followed before the `..` after it); an absolute target
    /// from the root; never above it.
    @Test func entriesArePlacedAsContainerdPlacesThem() throws {
        var placement = LayerPlacement(walking: LinkWalkBudget())
        #expect(try placement.place("lib/p.json") == "lib/p.json")
        placement.record("a", .symlink("/etc/x.yaml"))
        placement.record("lib", .symlink("a/../etc"))
        placement.record("usr/l", .symlink("b/../../x"))
        placement.record("usr/up", .symlink("../../../.."))
        #expect(try placement.place("lib/p.json") == "etc/etc/p.json")
        #expect(try placement.place("usr/l/f") == "x/f")
        #expect(try placement.place("usr/up/f") == "f")
        #expect(try placement.place("a/b/q.yaml") == "etc/x.yaml/b/q.yaml")
        #expect(try placement.placeDirectory("lib") == "etc/etc")
        // What replaces a link ends it; a directory over a link too.
        placement.record("lib", .directory)
        #expect(try placement.place("lib/p.json") == "lib/p.json")
        placement.record("usr", .file)
        #expect(try placement.place("usr/l/f") == "usr/l/f")
    }

    /// A layer writes over its own entries when it writes a path twice, or
    /// puts what is not a directory where it wrote under; a directory's
    /// entry after entries under it, or paths that only share a prefix,
    /// do not.
    @Test func aLayerWritingOverItsOwnEntriesIsNoticed() {
        func overlaps(_ entries: [(String, Bool)]) -> Bool {
            var overlaps = LayerOverlaps()
            for (path, isDirectory) in entries { overlaps.note(path, isDirectory: isDirectory) }
            return overlaps.found
        }
        #expect(!overlaps([("etc", true), ("etc/a", false), ("etc/b", false), ("etc2", false), ("et", false)]))
        #expect(!overlaps([("etc/a/b", false), ("etc/a", true), ("etc", true)]))
        #expect(overlaps([("etc/a", false), ("etc/a", false)]))
        #expect(overlaps([("etc", true), ("etc", true)]))
        #expect(overlaps([("etc/a/b", false), ("etc", false)]))
        #expect(overlaps([("etc/a/b", false), ("etc/a", false)]))
    }

    /// The overlap check hashes only the name of a path in the directory of
    /// the path before it: on random layers (entries mostly directory by
    /// directory, as archives hold them), it finds an overlap exactly where
    /// a check by whole paths does.
    @Test func overlapsFoundThroughTheLastDirectoryAreTheOnesPathsHave() {
        var random = SeededGenerator(seed: 0x0E7_2027)
        let names = ["a", "b", "ab", "a.b", "\u{F7FF}", "caf\u{E9}", "cafe\u{301}"]
        for _ in 0..<3_000 {
            var entries: [(String, Bool)] = []
            var directory = [String]()
            for _ in 0..<Int.random(in: 1...12, using: &random) {
                switch Int.random(in: 0..<4, using: &random) {
                case 0:
                    directory = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                        names.randomElement(using: &random)!
                    }
                case 1 where !directory.isEmpty: directory.removeLast()
                default: break
                }
                let path = (directory + [names.randomElement(using: &random)!]).joined(separator: "/")
                entries.append((path, Bool.random(using: &random)))
            }
            var overlaps = LayerOverlaps()
            for (path, isDirectory) in entries { overlaps.note(path, isDirectory: isDirectory) }
            // By whole paths, compared by their bytes.
            var paths = Set<[UInt8]>()
            var directories = Set<[UInt8]>()
            var found = false
            for (path, isDirectory) in entries where !found {
                let bytes = Array(path.utf8)
                found = !paths.insert(bytes).inserted || (!isDirectory && directories.contains(bytes))
                for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "/") {
                    directories.insert(Array(bytes[..<index]))
                }
            }
            #expect(overlaps.found == found, "\(entries)")
        }
    }

    @Test func hiddenByAncestorsAndSelfButNotBySiblings() {
        var trie = PathTrie()
        trie.insert("a/b", .deleted)
        trie.insert("c", .opaque)
        trie.insert("d/e", .seen)
        #expect(trie.hides("a/b"))
        #expect(trie.hides("a/b/c/d"))
        #expect(!trie.hides("a/bc"))
        // The layer that whited `a/b` out holds a directory `a`: it hides
        // what is at `a` below, not what is under it.
        #expect(trie.hiding("a") == .directoryWithoutEntry)
        #expect(!trie.hides("a/c"))
        #expect(trie.hides("c/x"))
        #expect(!trie.hides("c"))
        #expect(trie.hiding("d/e") == .directory)
        #expect(trie.hiding("d") == .directoryWithoutEntry)
        #expect(!trie.hides("d/e/f"))
        #expect(!trie.hides("e"))
        var root = PathTrie()
        root.insert(".", .opaque)
        #expect(root.hides("anything"))
    }

    @Test func aYAMLBombInAWantedFileIsAnErrorNotAnAbsence() throws {
        var yaml = "a: &big \"" + String(repeating: "x", count: 64 << 10) + "\"\nb:\n"
        for _ in 0..<1100 { yaml += "- *big\n" }
        var layer = TarBuilder()
        layer.file("policy/bomb.yaml", yaml)
        var flattener = LayerFlattener(paths: ["policy"], maxEntryBytes: 1 << 20)
        #expect(throws: YAMLError.self) { try flattener.apply(TarReader(MemoryByteStream(layer.archive))) }
        #expect(throws: YAMLError.self) {
            try BlobFiles.files(ofArchive: layer.archive, paths: ["policy/bomb.yaml"], maxEntryBytes: 1 << 20)
        }
    }

    @Test func aCutArchiveIsAnErrorNotAnAbsence() throws {
        var layer = TarBuilder()
        layer.file("policy/a.yaml", String(repeating: "k: v\n", count: 400))
        let cut = Array(layer.archive.prefix(1000))
        #expect(throws: ArchiveError.self) {
            try BlobFiles.files(ofArchive: cut, paths: ["policy/a.yaml"], maxEntryBytes: 1 << 20)
        }
    }
}

@Suite struct CacheKeyTests {
    /// Paths may hold any character: no two different sets share a key.
    @Test func pathSetsWithSeparatorsInThemGetDifferentKeys() {
        #expect(MethodTable.pathsKey(["ok.yaml\u{0}zz"]) != MethodTable.pathsKey(["ok.yaml", "zz"]))
        #expect(MethodTable.pathsKey(["a\",\"b"]) != MethodTable.pathsKey(["a", "b"]))
        #expect(MethodTable.pathsKey(["b", "a", "a"]) == MethodTable.pathsKey(["a", "b"]))
    }
}
