// libFuzzer entry point for the parsers that take outside input. Built only
// by fuzz/run (swift build --sanitize fuzzer --sanitize address); the target
// is chosen with OCIRPC_FUZZ_TARGET: json, shape, framing, reference, tar,
// gzip, zstd, yaml, journal, headers, layers.
import Archive
import DiskCaching
import Foundation
import Framing
import JSON
import OCIMethods
import Registry
import YAML

private let target = ProcessInfo.processInfo.environment["OCIRPC_FUZZ_TARGET"] ?? "json"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch target {
    case "json":
        let value = try? JSONParser.parse(bytes)
        if let value {
            // What is written must parse back to the same value.
            let again = try? JSONParser.parse(JSONWriter.bytes(value))
            precondition(again == value, "JSON round trip changed the value")
        }
        // The text kept without a tree is what the writer writes for the
        // tree, each repeated key once where it first came, with its last value.
        let compacted = try? JSONParser.compacted(bytes)
        precondition(
            compacted.map(JSONWriter.bytes) == value.map { JSONWriter.bytes(lastValueOfEachKey($0)) },
            "compacted text differs")
        // Read as Go reads it (blobs), the same, and what is written is JSON.
        let asGo = try? JSONParser.parse(bytes, reading: .asGo)
        precondition(value == nil || asGo == value, "a text strict reading takes read otherwise as Go reads it")
        let compactedAsGo = try? JSONParser.compacted(bytes, reading: .asGo)
        precondition(
            compactedAsGo.map(JSONWriter.bytes) == asGo.map { JSONWriter.bytes(lastValueOfEachKey($0)) },
            "compacted text differs as Go reads it")
        if let compactedAsGo { precondition((try? JSONParser.parse(JSONWriter.bytes(compactedAsGo))) != nil) }
    case "shape":
        // A manifest read two ways, as Go reads it: the tape refuses what
        // the parser refuses, with the same error, and shapes the same answers.
        let tree = Result { () throws(JSONParseError) in try JSONParser.parse(bytes, reading: .asGo) }
        let tape = Result { () throws(JSONParseError) in try JSONTape.parse(bytes, reading: .asGo) }
        switch (tree, tape) {
        case (.success(let tree), .success(let tape)):
            // What shaping is charged for bounds what it holds.
            precondition(tape.heldBytes <= JSONTape.maxHeldBytes(forText: bytes.count), "tape over its bound")
            // The check of what Go reads otherwise finds the same on both.
            let problem = tape.withRoot { ManifestTypeCheck.problem(in: $0) }
            precondition(ManifestTypeCheck.problem(in: tree) == problem, "the checks differ")
            for kind in 0..<3 {
                func shape<Node: JSONDocumentNode>(_ node: Node) -> Result<JSONValue, Shapes.AnswerTooLarge> {
                    Result { () throws(Shapes.AnswerTooLarge) in
                        switch kind {
                        case 0: try Shapes.manifest(node)
                        case 1: try Shapes.index(node)
                        default: try Shapes.referrers(node, repository: "r.test/app")
                        }
                    }
                }
                let fromTree = shape(tree)
                let fromTape = tape.withRoot { shape($0) }
                let answer = (try? fromTape.get()).map(JSONWriter.bytes)
                precondition((try? fromTree.get()).map(JSONWriter.bytes) == answer, "answers differ")
                let bound =
                    kind == 2
                    ? Shapes.maxReferrersBytes(forText: bytes.count, repository: "r.test/app")
                    : Shapes.maxAnswerBytes(forText: bytes.count)
                precondition((answer?.count ?? 0) <= bound, "answer over its bound")
            }
        case (.failure(let treeError), .failure(let tapeError)):
            precondition(treeError == tapeError, "errors differ: \(treeError) and \(tapeError)")
        default:
            preconditionFailure("one reader accepted what the other refused")
        }
    case "framing":
        var framer = MessageFramer(maxMessageBytes: 4096)
        // Feed in two chunks split at a byte the input chooses.
        let split = bytes.first.map { Int($0) % (bytes.count + 1) } ?? 0
        bytes.withUnsafeBytes { raw in
            framer.feed(UnsafeRawBufferPointer(rebasing: raw[..<split])) { _ in }
            framer.feed(UnsafeRawBufferPointer(rebasing: raw[split...])) { _ in }
        }
        framer.finish { _ in }
    case "reference":
        if let reference = try? ImageReference.parse(String(decoding: bytes, as: UTF8.self)) {
            // The canonical form parses back to the same reference.
            precondition((try? ImageReference.parse(reference.description)) == reference, "reference round trip")
        }
    case "tar":
        // Sizes and lengths in the input are arbitrary: no trap, whatever they say.
        // And the entries, their contents and the error that ends them do
        // not depend on how the reads cut the stream.
        func listing(_ source: any ByteStream) -> [String] {
            let tar = TarReader(source)
            var listed: [String] = []
            while true {
                do {
                    guard let entry = try tar.next() else { break }
                    precondition(entry.size >= 0 && entry.size <= TarReader.maxEntrySize, "entry size out of bounds")
                    precondition(ArchiveName.byteCount(entry.name) <= TarReader.maxNameBytes, "name over the limit")
                    let contents = (try? tar.readContents(limit: 1 << 16)).map { "\($0)" } ?? "unread"
                    listed.append("\(entry.name) \(entry.kind) \(entry.size) \(entry.linkName) \(contents)")
                } catch {
                    listed.append("\(error)")
                    break
                }
            }
            return listed
        }
        let whole = listing(MemoryByteStream(bytes))
        precondition(
            whole == listing(MemoryByteStream(bytes, readsAtMost: 1 + Int(bytes.last ?? 0) % 700)),
            "read differently in pieces")
    case "layers":
        // Up to four layers, flattened with the links among them followed:
        // no trap or hang, whatever the entries and links say, and what is
        // answered is JSON. The first byte says how many layers; each takes
        // as many blocks as the next byte says, the last what is left.
        let count = Int(bytes.first ?? 0) % 4 + 1
        var rest = bytes.dropFirst(min(bytes.count, 1 + count))
        var layers: [[UInt8]] = []
        for place in 0..<count {
            let blocks = place < count - 1 && bytes.count > 1 + place ? Int(bytes[1 + place]) : Int.max / 512
            let layer = rest.prefix(blocks * 512)
            layers.append(Array(layer))
            rest = rest.dropFirst(layer.count)
        }
        let paths = ["etc", "lib/conf"]
        let files = try? LayerFlattener.files(ofLayers: layers, paths: paths, maxEntryBytes: 1 << 16).files
        if let files {
            precondition(
                (try? JSONParser.parse(JSONWriter.bytes(files))) != nil, "files answered as text that is not JSON")
        }
        // What the first pass keeps for links is what further passes find.
        let unkept = try? LayerFlattener.files(
            ofLayers: layers, paths: paths, maxEntryBytes: 1 << 16, keepsLinkTargets: false
        ).files
        precondition(files.map(JSONWriter.bytes) == unkept.map(JSONWriter.bytes), "kept link targets differ")
        // The first layer as a blob, asked for its first names.
        var names = Set<String>()
        let tar = TarReader(MemoryByteStream(layers[0]))
        while names.count < 8, let entry = try? tar.next() { names.insert(entry.name) }
        if let blob = try? BlobFiles.files(ofArchive: layers[0], paths: names, maxEntryBytes: 1 << 16) {
            precondition((try? JSONParser.parse(JSONWriter.bytes(blob))) != nil, "blob files not JSON")
        }
    case "gzip", "zstd":
        // What a stream decodes to does not depend on how its reads cut it
        // (a member's header read across two reads included).
        func decode(_ source: any ByteStream) -> [UInt8]? {
            let decoder: any ByteStream = target == "gzip" ? GzipDecoder(source) : ZstdDecoder(source, share: nil)
            return try? decoder.readAll(limit: 1 << 22)
        }
        let whole = decode(MemoryByteStream(bytes))
        let cut = decode(MemoryByteStream(bytes, readsAtMost: 1 + Int(bytes.first ?? 0) % 7))
        precondition(whole == cut, "decoded differently when read in pieces")
    case "yaml":
        if let value = try? YAMLToJSON.convert(bytes) {
            // Whatever a document holds, what is written is JSON.
            precondition(
                (try? JSONParser.parse(JSONWriter.bytes(value))) != nil, "YAML converted to text that is not JSON")
        }
    case "journal":
        // A disk cache journal as anyone with the directory may leave it:
        // no trap, nothing located outside the bytes, and what is read as
        // whole records reads the same again on its own.
        let scan = JournalRecord.scan(bytes[...], offset: 0)
        precondition(scan.consumed >= 0 && scan.consumed <= bytes.count, "consumed past the end")
        for case .manifest(_, _, let body) in scan.records {
            precondition(body.lowerBound >= 0 && body.upperBound <= scan.consumed, "a body outside its records")
        }
        let again = JournalRecord.scan(bytes[..<scan.consumed], offset: 0)
        precondition(again.records == scan.records && !again.damaged, "whole records read differently")
    case "headers":
        // A registry's headers. Link: read or refused, and a next page is
        // always the listing's own URL with a query.
        let header = String(decoding: bytes, as: UTF8.self)
        if let target = try? LinkHeader.nextTarget(in: header) {
            precondition(header.contains("<\(target)>"), "a target that is not in the header")
        }
        let listing = "http://r.test:5000/v2/app/referrers/sha256:abc"
        let response = HTTPResponse(status: 200, headers: ["link": header], body: [])
        if let next = try? RegistryClient.nextPage(after: response, listing: listing, what: "the referrers") {
            precondition(next.hasPrefix(listing + "?") && next.utf8.count > listing.utf8.count + 1, "a page elsewhere")
        }
        // An address as libcurl would name it: public or not, no trap.
        _ = header.withCString { AddressClass.isPublic($0) }
        // WWW-Authenticate: parameters by non-empty, lower-cased names.
        if let challenge = AuthChallenge(header) {
            precondition(challenge.parameters.keys.allSatisfy { !$0.isEmpty && $0 == $0.lowercased() }, "a bad name")
        }
    default:
        fatalError("unknown OCIRPC_FUZZ_TARGET \(target)")
    }
    return 0
}

/// `value` with each object's repeated keys kept once, where they first
/// came, with their last value (keys compared by their bytes): the model
/// `JSONParser.compacted` is checked against.
private func lastValueOfEachKey(_ value: JSONValue) -> JSONValue {
    switch value {
    case .array(let elements): return .array(elements.map(lastValueOfEachKey))
    case .object(let object):
        var members: [JSONObject.Member] = []
        var places: [[UInt8]: Int] = [:]
        for member in object.members {
            let value = lastValueOfEachKey(member.value)
            if let place = places[Array(member.key.utf8)] {
                members[place] = JSONObject.Member(key: members[place].key, value: value)
            } else {
                places[Array(member.key.utf8)] = members.count
                members.append(JSONObject.Member(key: member.key, value: value))
            }
        }
        return .object(JSONObject(members))
    default: return value
    }
}
