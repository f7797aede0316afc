import Glibc
import Registry

extension DiskCache {
    /// The largest derived result kept (an `image_files` answer can be large;
    /// past this it is simply not kept).
    public static let maxDerivedBytes = 64 << 20
    /// Room for a stored result's first two lines (its hash and name).
    static let maxDerivedNameBytes = 4 << 10

    /// Bumped whenever the shape of a derived result changes: results of an
    /// older format are never read.
    /// "2": `image_files` reads only manifests Go reads the same way
    /// (`ManifestTypeCheck`), both read tar and convert YAML as Go does;
    /// a result of "1" may come from a manifest, a layer or a file read
    /// otherwise. "3": `image_files` and `blob_files` follow links to the
    /// files they lead to, where "2" left them out. "4": layers unpacked as
    /// runtimes unpack them (entries written through their own layer's
    /// links), names told apart by their bytes (a whiteout of one spelling
    /// of `café` hid the other in "3"), YAML keys too. "5": two files
    /// whose names are written alike (they differ only where they are not
    /// UTF-8) fail `image_files`, where "4" wrote one key twice. "6": a
    /// key a JSON object repeats is kept once with its last value
    /// (`parsed_blob`, JSON files), where "5" kept both. "7": directories
    /// and extensions matched as Go's `strings.EqualFold` matches them
    /// (`manifests/x.jſon` was left out in "6"), and a name's invalid bytes
    /// written as one U+FFFD each, as Go writes them; YAML and JSON files
    /// whose characters go-yaml reads otherwise than libyaml or JSON
    /// (`CharacterCheck`) converted as go-yaml converts them. "8": a
    /// layer's compression told as the runtimes tell it (a gzip member
    /// with reserved flags read, a stream that is gzip by two bytes only
    /// read as it is, a zstd skippable frame, xz or bzip2 refused). "9":
    /// `image_files` checks each layer against its config's `diff_ids`.
    /// "10": a whiteout or opaque marker under what its own layer wrote
    /// as no directory fails `image_files` (containers/storage leaves it
    /// out, containerd refuses the layer). "11": `image_files` reads an
    /// index's entry only where containerd runs the same one (else
    /// `ambiguous_platform`: "10" read the first `amd64/v2` entry before a
    /// plain `amd64` one), follows nested indexes, and reads embedded
    /// layers before the registry. "12": an index entry's embedded
    /// manifest is read before the registry (wrong bytes are
    /// `digest_mismatch`, where "11" read the registry's), and a manifest
    /// its entry gives as the other kind is `ambiguous_manifest`.
    static let derivedFormat = "12"

    /// A result derived from content (`parsed_blob`, `blob_files`,
    /// `image_files`) under `kind` and `key` (which names the repository,
    /// the content digest and the parameters), as the JSON text stored; nil
    /// when absent or damaged (then deleted).
    public func derived(_ kind: String, _ key: String) -> [UInt8]? {
        guard let name = Self.derivedName(kind, key) else { return nil }
        let path = derivedPath(name)
        guard let stored = read(path, limit: Self.maxDerivedBytes + Self.maxDerivedNameBytes, touch: true) else {
            count { $0.misses += 1 }
            return nil
        }
        // "<sha256 of the body>\n<format>|<kind>|<key>\n<body>"
        guard let first = stored.firstIndex(of: 0x0A),
            let second = stored[(first + 1)...].firstIndex(of: 0x0A),
            let digest = Digest(String(decoding: stored[..<first], as: UTF8.self)),
            String(decoding: stored[(first + 1)..<second], as: UTF8.self) == name,
            Digest.of(stored[(second + 1)...]) == digest
        else {
            return missDamaged(path)
        }
        count { $0.hits += 1 }
        return Array(stored[(second + 1)...])
    }

    /// Keeps `json` as the result of `kind` for `key`.
    public func storeDerived(_ kind: String, _ key: String, _ json: [UInt8]) {
        guard json.count <= Self.maxDerivedBytes, let name = Self.derivedName(kind, key) else { return }
        var stored = Array("\(Digest.of(json))\n\(name)\n".utf8)
        stored.append(contentsOf: json)
        write(stored, to: derivedPath(name))
    }

    /// The name line of a stored result; nil for a name that cannot be one
    /// (a newline in it), which is then never kept.
    static func derivedName(_ kind: String, _ key: String) -> String? {
        let name = derivedFormat + "|" + kind + "|" + key
        return name.utf8.contains(0x0A) ? nil : name
    }

    private func derivedPath(_ name: String) -> String {
        tables + "/derived/\(Digest.of(Array(name.utf8)).hex)"
    }
}
