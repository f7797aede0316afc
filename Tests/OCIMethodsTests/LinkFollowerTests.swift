import Reasons
import Archive
import JSON
import Testing
import TestFixtures
@testable import OCIMethods

/// `image_files` on links: a wanted name that is a link, and a wanted
/// directory reached through a symbolic link, show what a runtime reading
/// that path in the container shows.
@Suite struct LinkFollowerTests {
    /// Runs the flattener as `image_files` does: the layers (given bottom
    /// first, as a manifest lists them) top first, then the passes that
    /// follow links. Counts the passes.
    private func flatten(_ layers: [TarBuilder], paths: [String]) throws -> (files: JSONValue, passes: Int) {
        let flattened = try LayerFlattener.files(
            ofLayers: layers.reversed().map(\.archive), paths: paths, maxEntryBytes: 1 << 20)
        return (flattened.files, flattened.passes)
    }

    private func files(_ layers: [TarBuilder], paths: [String] = ["etc"]) throws -> JSONValue {
        try flatten(layers, paths: paths).files
    }

    /// The files by key, each as its JSON text: the same whatever order
    /// the keys were written in, and whether a file was kept as JSON text.
    private func texts(_ files: JSONValue) -> [String: String] {
        var texts: [String: String] = [:]
        for key in files.objectValue?.keys ?? [] { texts[key] = files[key]?.jsonText }
        return texts
    }

    private func isCorrupt(_ error: any Error, _ text: String) -> Bool {
        guard let error = error as? ArchiveError else { return false }
        return error.reason == .corruptArchive && error.message.contains(text)
    }

    /// A symbolic link shows the file it leads to, as the kernel resolves
    /// it: relative to the link's directory, absolute from the image's
    /// root, `..` taken after the links before it and never above the root,
    /// the file as the layers above leave it.
    @Test func aWantedSymbolicLinkShowsTheFileItLeadsTo() throws {
        var bottom = TarBuilder()
        bottom.file("etc/real/policy.txt", "from: bottom")
        bottom.file("opt/p.json", #"{"from":"opt"}"#)
        bottom.file("deep/x.yaml", "from: deep")
        bottom.file("x.yaml", "from: root")
        bottom.symlink("etc/sub", to: "/deep/dir")
        bottom.directory("deep/dir")
        var top = TarBuilder()
        top.file("etc/real/policy.txt", "from: top")
        top.symlink("etc/relative.yaml", to: "real/policy.txt")
        top.symlink("etc/absolute.yaml", to: "/opt/p.json")
        // The kernel: `sub` is /deep/dir, its `..` /deep. Text: etc/x.yaml.
        top.symlink("etc/dots.yaml", to: "sub/../x.yaml")
        top.symlink("etc/above.yaml", to: "../../../../x.yaml")
        top.symlink("etc/chain.yaml", to: "relative.yaml")
        let (files, passes) = try flatten([bottom, top], paths: ["etc"])
        #expect(
            texts(files)
                == texts([
                    "etc/relative.yaml": ["from": "top"], "etc/absolute.yaml": ["from": "opt"],
                    "etc/dots.yaml": ["from": "deep"], "etc/above.yaml": ["from": "root"],
                    "etc/chain.yaml": ["from": "top"],
                ]), "\(files.jsonText)")
        #expect(passes == 1)
    }

    /// What the container cannot read as a file is left out: a link to
    /// nothing, to a whited-out file, to a directory, through a file.
    @Test func aSymbolicLinkThatLeadsToNoFileIsLeftOut() throws {
        var bottom = TarBuilder()
        bottom.file("gone.yaml", "a: 1")
        bottom.file("file", "not a directory")
        var top = TarBuilder()
        top.file(".wh.gone.yaml", "")
        top.directory("etc/dir")
        top.symlink("etc/nowhere.yaml", to: "missing.yaml")
        top.symlink("etc/whited.yaml", to: "/gone.yaml")
        top.symlink("etc/directory.yaml", to: "dir")
        top.symlink("etc/under-a-file.yaml", to: "/file/x.yaml")
        top.file("etc/plain.yaml", "b: 2")
        #expect(try files([bottom, top]) == ["etc/plain.yaml": ["b": 2]])
    }

    /// A symbolic link to a file below it, in its layer after it or in a
    /// lower layer, is read in the first pass: no further pass. Where an
    /// entry at the target came before the link (above it, or earlier in
    /// its layer), the first pass cannot tell what stands there, and a
    /// pass finds it; each answer is the one every link taking a pass gets.
    @Test(arguments: ["below", "after it", "above", "earlier in its layer", "earlier and after"])
    func linksToFilesBelowThemNeedNoFurtherPass(target: String) throws {
        var bottom = TarBuilder()
        bottom.file("usr/t.yaml", "from: bottom")
        var top = TarBuilder()
        var upper = TarBuilder()
        switch target {
        case "after it":
            top.symlink("etc/l.yaml", to: "/usr/t.yaml")
            top.file("usr/t.yaml", "from: after")
        case "above":
            upper.file("usr/t.yaml", "from: above")
            top.symlink("etc/l.yaml", to: "/usr/t.yaml")
        case "earlier in its layer":
            top.file("usr/t.yaml", "from: earlier")
            top.symlink("etc/l.yaml", to: "/usr/t.yaml")
        case "earlier and after":
            top.file("usr/t.yaml", "from: earlier")
            top.symlink("etc/l.yaml", to: "/usr/t.yaml")
            top.file("usr/t.yaml", "from: after")
        default:
            top.symlink("etc/l.yaml", to: "../usr/t.yaml")
        }
        let layers = [bottom, top, upper].reversed().map(\.archive)
        let kept = try LayerFlattener.files(ofLayers: layers, paths: ["etc"], maxEntryBytes: 1 << 20)
        let passed = try LayerFlattener.files(
            ofLayers: layers, paths: ["etc"], maxEntryBytes: 1 << 20, keepsLinkTargets: false)
        let expected: [String: JSONValue] = [
            "below": ["from": "bottom"], "after it": ["from": "after"], "above": ["from": "above"],
            "earlier in its layer": ["from": "earlier"], "earlier and after": ["from": "after"],
        ]
        #expect(kept.files == ["etc/l.yaml": expected[target]!], "\(kept.files.jsonText)")
        #expect(passed.files == kept.files)
        #expect(passed.passes == 1)
        #expect(kept.passes == (["above", "earlier in its layer"].contains(target) ? 1 : 0))
    }

    /// A loop, or more than 40 links, fails the call, as the container's
    /// read fails.
    @Test(arguments: [2, 41])
    func tooManySymbolicLinksFailTheCall(links: Int) throws {
        var layer = TarBuilder()
        for index in 0..<links { layer.symlink("etc/\(index).yaml", to: "\((index + 1) % links).yaml") }
        #expect { try files([layer]) } throws: { isCorrupt($0, "more than 40 links") }
        // One link fewer than the limit, ending at a file, is followed.
        if links == 41 {
            var chain = TarBuilder()
            chain.file("etc/39.yaml", "end: true")
            for index in 0..<39 { chain.symlink("etc/\(index).yaml", to: "\(index + 1).yaml") }
            #expect(try files([chain])["etc/0.yaml"] == ["end": true])
        }
    }

    /// A hard link is the file its target named when it was unpacked: the
    /// last entry of that name before it in its layer, or what the layers
    /// below show; what comes after it (in its layer or above) does not
    /// change it.
    @Test func aWantedHardLinkShowsItsTargetAsItWasUnpacked() throws {
        var bottom = TarBuilder()
        bottom.file("usr/lower.yaml", "from: bottom")
        bottom.file("usr/replaced.yaml", "from: bottom")
        var top = TarBuilder()
        top.file("usr/same.txt", "from: first")
        top.file("usr/same.txt", "from: second")
        top.hardlink("etc/same.yaml", to: "usr/same.txt")
        top.file("usr/same.txt", "from: after")
        top.hardlink("etc/lower.yaml", to: "/usr/lower.yaml")
        top.hardlink("etc/replaced.yaml", to: "usr/replaced.yaml")
        top.file("usr/replaced.yaml", "from: top")
        let (files, passes) = try flatten([bottom, top], paths: ["etc"])
        #expect(
            texts(files)
                == texts([
                    "etc/same.yaml": ["from": "second"], "etc/lower.yaml": ["from": "bottom"],
                    "etc/replaced.yaml": ["from": "bottom"],
                ]), "\(files.jsonText)")
        #expect(passes == 1)
    }

    /// A pass reads no further down than its lookups need: a hard link to
    /// a file earlier in its layer is decided there, and the layers below
    /// are not read again; one to a file in the bottom layer reads to it.
    @Test func aPassStopsAtTheLastLayerItNeeds() throws {
        var bottom = TarBuilder()
        bottom.file("usr/low.yaml", "from: bottom")
        let middle = TarBuilder()
        var top = TarBuilder()
        top.file("usr/t.yaml", "from: top")
        top.hardlink("etc/same.yaml", to: "usr/t.yaml")
        var sameLayer = try LayerFlattener.files(
            ofLayers: [top.archive, middle.archive, bottom.archive], paths: ["etc"], maxEntryBytes: 1 << 20)
        #expect(sameLayer.files == ["etc/same.yaml": ["from": "top"]])
        #expect(sameLayer.layersReread == 1)
        top.hardlink("etc/low.yaml", to: "usr/low.yaml")
        sameLayer = try LayerFlattener.files(
            ofLayers: [top.archive, middle.archive, bottom.archive], paths: ["etc"], maxEntryBytes: 1 << 20)
        #expect(sameLayer.files["etc/low.yaml"] == ["from": "bottom"])
        #expect(sameLayer.layersReread == 3)
    }

    /// A hard link to nothing (missing, whited out before it, after it in
    /// its layer), or to a directory, cannot be unpacked: the call fails.
    @Test(arguments: ["missing", "whited out", "after", "directory"])
    func aHardLinkToNoFileFailsTheCall(target: String) throws {
        var bottom = TarBuilder()
        bottom.file("usr/t.yaml", "a: 1")
        bottom.directory("usr/dir")
        var top = TarBuilder()
        switch target {
        case "missing": top.hardlink("etc/l.yaml", to: "usr/missing.yaml")
        case "whited out":
            top.file("usr/.wh.t.yaml", "")
            top.hardlink("etc/l.yaml", to: "usr/t.yaml")
        case "after":
            top.hardlink("etc/l.yaml", to: "usr/later.yaml")
            top.file("usr/later.yaml", "b: 2")
        default: top.hardlink("etc/l.yaml", to: "usr/dir")
        }
        #expect { try files([bottom, top]) } throws: { isCorrupt($0, "is a hard link to") }
    }

    /// A layer between a hard link and its target hides the target as it
    /// hides any file: a whiteout of it or of its directory, an opaque
    /// directory, a file where its directory was. The link then leads to
    /// nothing, and the call fails; a directory there hides nothing.
    @Test(arguments: ["whiteout", "directory whiteout", "opaque", "file", "directory"])
    func aLayerBetweenHidesAHardLinksTarget(between: String) throws {
        var bottom = TarBuilder()
        bottom.file("usr/lib/t.yaml", "from: bottom")
        var middle = TarBuilder()
        switch between {
        case "whiteout": middle.file("usr/lib/.wh.t.yaml", "")
        case "directory whiteout": middle.file("usr/.wh.lib", "")
        case "opaque": middle.file("usr/.wh..wh..opq", "")
        case "file": middle.file("usr/lib", "not a directory")
        default: middle.directory("usr/lib")
        }
        var top = TarBuilder()
        top.hardlink("etc/l.yaml", to: "usr/lib/t.yaml")
        if between == "directory" {
            #expect(try files([bottom, middle, top]) == ["etc/l.yaml": ["from": "bottom"]])
        } else {
            #expect { try files([bottom, middle, top]) } throws: { isCorrupt($0, "is a hard link to") }
        }
    }

    /// Hard links to hard links are followed, a pass each, up to eight;
    /// a hard link to a symbolic link is resolved from the hard link's place.
    @Test func hardLinkChainsAndHardLinksToSymbolicLinksAreFollowed() throws {
        var layer = TarBuilder()
        layer.file("usr/end.yaml", "end: true")
        layer.hardlink("usr/1", to: "usr/end.yaml")
        layer.hardlink("usr/2", to: "usr/1")
        layer.hardlink("etc/chain.yaml", to: "usr/2")
        layer.file("etc/near.yaml", "near: etc")
        layer.file("usr/near.yaml", "near: usr")
        layer.symlink("usr/soft", to: "near.yaml")
        layer.hardlink("etc/soft.yaml", to: "usr/soft")
        let (files, passes) = try flatten([layer], paths: ["etc"])
        #expect(files["etc/chain.yaml"] == ["end": true])
        #expect(files["etc/soft.yaml"] == ["near": "etc"])
        #expect(passes == 3)

        var deep = TarBuilder()
        deep.file("usr/0", "end: true")
        for index in 1...8 { deep.hardlink("usr/\(index)", to: "usr/\(index - 1)") }
        deep.hardlink("etc/deep.yaml", to: "usr/8")
        #expect { try flatten([deep], paths: ["etc"]) } throws: { isCorrupt($0, "8 hard links") }
    }

    /// A wanted directory reached through a symbolic link (`lib` ->
    /// `usr/lib`, as in a merged-/usr image) shows the files of the
    /// directory it leads to, as the layers above leave them, under the
    /// name asked for.
    @Test func aWantedDirectoryReachedThroughASymbolicLinkShowsItsFiles() throws {
        var bottom = TarBuilder()
        bottom.symlink("lib", to: "usr/lib")
        bottom.file("usr/lib/conf/a.yaml", "a: 1")
        bottom.file("usr/lib/conf/own.yaml", "own: lower")
        bottom.file("usr/lib/conf/notes.txt", "n: 1")
        bottom.symlink("usr/lib/conf/b.json", to: "/opt/b.txt")
        bottom.file("opt/b.txt", #"{"b":2}"#)
        var top = TarBuilder()
        top.file("usr/lib/conf/own.yaml", "own: upper")
        let files = try files([bottom, top], paths: ["/lib/conf/"])
        #expect(
            texts(files)
                == texts([
                    "lib/conf/a.yaml": ["a": 1], "lib/conf/b.json": ["b": 2],
                    "lib/conf/own.yaml": ["own": "upper"],
                ]), "\(files.jsonText)")
    }

    /// An upper layer's entry under a name a lower layer made a symbolic
    /// link, with no entry of that name above: an overlay snapshotter
    /// unpacks the upper layer on its own, so the name is a directory
    /// there and hides the link; a runtime that unpacks every layer in one
    /// directory writes the entry through the link. The two show different
    /// files, so the call fails rather than pick one. With a directory
    /// entry above, both replace the link with it.
    @Test(arguments: ["file", "link", "whiteout", "opaque", "directory entry"])
    func anUpperEntryUnderALowerSymbolicLinkFailsTheCall(upper: String) throws {
        var bottom = TarBuilder()
        bottom.symlink("etc", to: "conf")
        bottom.file("conf/data.yaml", "from: conf")
        var top = TarBuilder()
        switch upper {
        case "file": top.file("etc/x.yaml", "from: top")
        case "link": top.symlink("etc/x.yaml", to: "data.yaml")
        case "whiteout": top.file("etc/.wh.data.yaml", "")
        case "opaque": top.file("etc/.wh..wh..opq", "")
        default:
            top.directory("etc")
            top.file("etc/x.yaml", "from: top")
        }
        if upper == "directory entry" {
            #expect(try files([bottom, top]) == ["etc/x.yaml": ["from": "top"]])
        } else {
            #expect { try files([bottom, top]) } throws: { isCorrupt($0, "runtimes unpack those entries") }
        }
    }

    /// Where runtimes stack a layer's entries differently, the call fails
    /// once a lower layer holds a file there that an overlay would show: a
    /// whiteout and a directory at one path in one layer (the OCI spec
    /// hides what is below, containerd's overlay merges it), what is not a
    /// directory and then a directory at one path (one directory's unpacking
    /// loses what was below, an overlay merges it; an opaque marker written
    /// before goes with it), an opaque marker for the root (overlayfs does
    /// not read it). With nothing below there, the call answers.
    @Test(arguments: ["whiteout and directory", "file then directory", "opaque, link, directory", "opaque root"])
    func stacksRuntimesReadDifferentlyFailWhereALowerFileWouldShow(upper: String) throws {
        var top = TarBuilder()
        switch upper {
        case "whiteout and directory":
            top.file(".wh.etc", "")
            top.directory("etc")
        case "file then directory":
            top.file("etc", "a file")
            top.directory("etc")
        case "opaque, link, directory":
            top.file("etc/.wh..wh..opq", "")
            top.symlink("etc", to: "elsewhere")
            top.directory("etc")
        default:
            top.file(".wh..wh..opq", "")
        }
        top.file("etc/top.yaml", "from: top")
        var bottom = TarBuilder()
        bottom.file("etc/lower.yaml", "from: bottom")
        #expect { try files([bottom, top]) } throws: { isCorrupt($0, "runtimes differ on whether it shows") }
        var emptyBelow = TarBuilder()
        emptyBelow.directory("etc")
        emptyBelow.file("usr/other.txt", "elsewhere")
        if upper != "opaque root" {
            #expect(try files([emptyBelow, top]) == ["etc/top.yaml": ["from": "top"]])
        }
    }

    /// A whiteout hides what the layers below it hold, not what the layers
    /// above it hold under that name: a link reaching a file an upper layer
    /// put under a path a middle layer whited out reads it.
    @Test func aWhiteoutDoesNotHideWhatTheLayersAboveHoldUnderIt() throws {
        var bottom = TarBuilder()
        bottom.file("usr/lib/p.json", #"{"from":"bottom"}"#)
        var middle = TarBuilder()
        middle.file("usr/.wh.lib", "")
        var top = TarBuilder()
        top.file("usr/lib/p.json", #"{"from":"top"}"#)
        top.symlink("etc/x.json", to: "../../../usr/lib/p.json")
        #expect(try files([bottom, middle, top]) == ["etc/x.json": ["from": "top"]])
    }

    /// A layer's entry under a symbolic link the same layer made before it
    /// is written where the link leads, as every runtime unpacks it, and
    /// replaces what the layer wrote there; so does a whiteout. Read by
    /// name, the file the link leads to would show what was there before.
    @Test func anEntryUnderALinkOfItsOwnLayerIsWrittenWhereTheLinkLeads() throws {
        var bottom = TarBuilder()
        bottom.file("usr/lib/gone.yaml", "from: bottom")
        bottom.file("etc/x.yaml", "from: bottom")
        var top = TarBuilder()
        top.file("usr/lib/policy.yaml", "allowed: false")
        top.symlink("lib", to: "usr/lib")
        top.file("lib/policy.yaml", "allowed: true")
        top.file("lib/.wh.gone.yaml", "")
        top.symlink("abs", to: "/usr/lib")
        top.file("abs/abs.yaml", "from: abs")
        top.symlink("up", to: "../../..")
        top.file("up/etc/x.yaml", "from: up")
        let written = try files([bottom, top], paths: ["usr/lib", "lib", "etc"])
        #expect(
            texts(written)
                == texts([
                    "usr/lib/policy.yaml": ["allowed": true], "usr/lib/abs.yaml": ["from": "abs"],
                    "lib/policy.yaml": ["allowed": true], "lib/abs.yaml": ["from": "abs"],
                    "etc/x.yaml": ["from": "up"],
                ]), "\(written.jsonText)")
        // A hard link's target is found the same way.
        var linked = TarBuilder()
        linked.file("real/t.yaml", "from: real")
        linked.symlink("d", to: "real")
        linked.hardlink("etc/h.yaml", to: "d/t.yaml")
        #expect(try files([linked]) == ["etc/h.yaml": ["from": "real"]])
    }

    /// An entry a layer writes and then replaces with what is not a
    /// directory, above it or at its path, is gone, as unpacking removes
    /// it; a hard link after that finds nothing.
    @Test func whatALayerWritesAndThenReplacesIsGone() throws {
        var bottom = TarBuilder()
        bottom.file("etc/policy/lower.yaml", "from: bottom")
        var top = TarBuilder()
        top.directory("etc/policy")
        top.file("etc/policy/a.yaml", "from: top")
        top.file("etc/policy", "a file now")
        #expect(try files([bottom, top], paths: ["etc/policy"]) == [:])
        var again = TarBuilder()
        again.file("usr/t.yaml", "from: earlier")
        again.file("usr", "a file")
        again.directory("usr")
        again.hardlink("etc/h.yaml", to: "usr/t.yaml")
        for keeps in [true, false] {
            #expect {
                try LayerFlattener.files(
                    ofLayers: [again.archive], paths: ["etc"], maxEntryBytes: 1 << 20, keepsLinkTargets: keeps)
            } throws: { isCorrupt($0, "hard link") }
        }
    }

    /// What is not a directory in one layer hides what the layers below it
    /// hold under it, even where a directory above hides it in turn: the
    /// runtime replaced the lower directory with it, then it with the
    /// upper directory.
    @Test(arguments: ["symbolic link", "file"])
    func aNonDirectoryHiddenByAnUpperDirectoryStillHidesWhatIsBelowIt(middle: String) throws {
        var bottom = TarBuilder()
        bottom.file("lib/old.yaml", "from: bottom")
        var between = TarBuilder()
        if middle == "file" { between.file("lib", "a file") } else { between.symlink("lib", to: "usr/lib") }
        var top = TarBuilder()
        top.directory("lib")
        top.file("lib/new.yaml", "from: top")
        #expect(try files([bottom, between, top], paths: ["lib"]) == ["lib/new.yaml": ["from": "top"]])
        // Without the directory's own entry above, a file is hidden the same way.
        var implicit = TarBuilder()
        implicit.file("lib/new.yaml", "from: top")
        if middle == "file" {
            #expect(try files([bottom, between, implicit], paths: ["lib"]) == ["lib/new.yaml": ["from": "top"]])
        }
    }

    /// Of a link and a file of one name in one layer, the last stands.
    @Test func theLastEntryOfANameInALayerStands() throws {
        var linkLast = TarBuilder()
        linkLast.file("usr/t.yaml", "from: target")
        linkLast.file("etc/x.yaml", "from: file")
        linkLast.symlink("etc/x.yaml", to: "/usr/t.yaml")
        #expect(try files([linkLast]) == ["etc/x.yaml": ["from": "target"]])
        var fileLast = TarBuilder()
        fileLast.file("usr/t.yaml", "from: target")
        fileLast.symlink("etc/x.yaml", to: "/usr/t.yaml")
        fileLast.file("etc/x.yaml", "from: file")
        #expect(try files([fileLast]) == ["etc/x.yaml": ["from": "file"]])
    }

    /// Link targets that name more than 65,536 paths and directories
    /// together fail the call, as too large: a layer's entries are checked
    /// against them, and that check is bounded by this.
    @Test func linkTargetsNamingTooManyPathsFailTheCall() throws {
        var layer = TarBuilder()
        let deep = Array(repeating: "d", count: 1_000).joined(separator: "/")
        for index in 0..<70 {
            layer.paxHeader(TarBuilder.paxRecord("linkpath", deep + "/\(index).yaml"))
            layer.hardlink("etc/\(index).yaml", to: "x")
        }
        #expect { try files([layer]) } throws: {
            ($0 as? ArchiveError)?.reason == .archiveTooLarge
                && ($0 as? ArchiveError)?.message.contains("paths and directories") == true
        }
    }

    /// A layer of many entries on the paths 4,000 links lead through (their
    /// directory again and again, whiteouts in it) is read with each entry
    /// settled once, not once per link: the links still find their files.
    @Test func manyEntriesOnTheWatchedPathsAreSettledOnce() throws {
        var bottom = TarBuilder()
        bottom.file("usr/share/t.yaml", "from: bottom")
        var middle = TarBuilder()
        for _ in 0..<2_000 {
            middle.directory("usr")
            middle.file("usr/.wh.other", "")
        }
        var top = TarBuilder()
        for index in 0..<4_000 { top.symlink("etc/\(index).yaml", to: "/usr/share/t.yaml") }
        let files = try files([bottom, middle, top])
        #expect(files.objectValue?.count == 4_000)
        #expect(files["etc/3999.yaml"] == ["from": "bottom"])
    }

    /// `blob_files` follows the links asked for among the archive's own
    /// names, as the tar unpacked shows them: a hard link is the file its
    /// target named before it, a symbolic link is resolved as the kernel
    /// resolves it; one to nothing is left out, a hard link to nothing
    /// fails the call. Of entries of one name, the last is read.
    @Test func blobFilesFollowLinksAmongTheArchivesNames() throws {
        var tar = TarBuilder()
        tar.file("usr/t.txt", "from: first")
        tar.hardlink("etc/hard.yaml", to: "usr/t.txt")
        tar.file("usr/t.txt", "from: second")
        tar.symlink("etc/soft.yaml", to: "../usr/t.txt")
        tar.symlink("etc/sub", to: "/deep/dir")
        tar.directory("deep/dir")
        tar.file("deep/x.yaml", "from: deep")
        tar.symlink("etc/dots.yaml", to: "sub/../x.yaml")
        tar.symlink("etc/nowhere.yaml", to: "missing.yaml")
        tar.file("etc/replaced.yaml", "from: file")
        tar.symlink("etc/replaced.yaml", to: "/deep/x.yaml")
        let paths: Set<String> = [
            "etc/hard.yaml", "etc/soft.yaml", "etc/dots.yaml", "etc/nowhere.yaml", "etc/replaced.yaml",
        ]
        let files = try BlobFiles.files(ofArchive: tar.archive, paths: paths, maxEntryBytes: 1 << 20)
        #expect(
            texts(files)
                == texts([
                    "etc/hard.yaml": ["from": "first"], "etc/soft.yaml": ["from": "second"],
                    "etc/dots.yaml": ["from": "deep"], "etc/replaced.yaml": ["from": "deep"],
                ]), "\(files.jsonText)")

        var broken = TarBuilder()
        broken.hardlink("etc/hard.yaml", to: "usr/later.txt")
        broken.file("usr/later.txt", "a: 1")
        #expect {
            try BlobFiles.files(ofArchive: broken.archive, paths: ["etc/hard.yaml"], maxEntryBytes: 1 << 20)
        } throws: { isCorrupt($0, "is a hard link to") }
    }

    /// `blob_files` on an archive that writes over its own entries reads
    /// each name asked for as the unpacked archive has it: an entry whose
    /// directory the archive later made a link shows what the link leads
    /// to, one whose directory it later made a file shows nothing.
    @Test func blobFilesReadNamesAsTheUnpackedArchiveHasThem() throws {
        var archive = TarBuilder()
        archive.file("etc/x.yaml", "from: first")
        archive.file("opt/gone.yaml", "from: first")
        archive.symlink("etc", to: "other")
        archive.file("other/x.yaml", "from: other")
        archive.file("opt", "a file now")
        archive.file("kept.yaml", "from: kept")
        let files = try BlobFiles.files(
            ofArchive: archive.archive, paths: ["etc/x.yaml", "opt/gone.yaml", "kept.yaml"], maxEntryBytes: 1 << 20)
        #expect(files == ["etc/x.yaml": ["from": "other"], "kept.yaml": ["from": "kept"]], "\(files.jsonText)")
    }

    /// More than 4,096 wanted links in one call fail it, as too large.
    @Test func moreLinksThanTheLimitFailTheCall() throws {
        var layer = TarBuilder()
        layer.file("usr/t.yaml", "a: 1")
        for index in 0...LinkFollower.maxFollowed { layer.symlink("etc/\(index).yaml", to: "/usr/t.yaml") }
        #expect { try files([layer]) } throws: { ($0 as? ArchiveError)?.reason == .archiveTooLarge }
    }
}
