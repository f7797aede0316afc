// The standard library's Unicode case folding (`_caseFolded`), which its
// own Foundation uses, is declared for system programming interfaces.
@_spi(_Unicode) import Swift
import Archive
import JSON

/// Letter case as Go's `strings` package reads it, where the original
/// builtins and the runtimes ignore case: `image_files` matches
/// directories and extensions with `strings.EqualFold`, and containerd
/// normalises a platform's names with `strings.ToLower`.
///
/// Swift's `lowercased()` is Unicode's full lower case of the text: `İ`
/// becomes `i` and a combining dot (Go's `ToLower` gives `i`), `ſ` stays
/// `ſ` (Go's `EqualFold` takes it for `s`). Read with it, an index entry
/// for `lİnux` escaped the check for entries a runtime takes for `linux`,
/// and a file `manifests/x.jſon`, which the original reads, was left out.
/// `GoCaseParity` compares both functions with Go's on every scalar.
package enum GoCase {
    /// Go's `strings.ToLower` of valid text: each scalar's simple lower
    /// case (UnicodeData's, one scalar for one).
    package static func lowercased(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        var lowered = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { lowered.append(simpleLowercase(scalar)) }
        return String(lowered)
    }

    /// A scalar's simple lower case. The full lower case that the standard
    /// library gives is longer than one scalar only for `İ` (U+0130: `i`
    /// and U+0307), whose simple lower case is its first scalar.
    private static func simpleLowercase(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if scalar.isASCII { return Unicode.Scalar(UInt8(ascii: scalar).lowercasedASCII) }
        return scalar.properties.lowercaseMapping.unicodeScalars.first ?? scalar
    }

    /// What a held name (`ArchiveName`) is compared by where case does not
    /// count, as Go's `strings.EqualFold` compares: its bytes read as Go
    /// reads them (every byte of an invalid sequence one U+FFFD), each
    /// scalar replaced by its Unicode case folding. Two names have the same
    /// key exactly when `EqualFold` takes them for one (`ſ` and `s`, `K`
    /// and the Kelvin sign, `ß` and `ẞ`, `σ` and `ς`; not `İ` and `i`).
    /// The key is held text, compared by its bytes.
    package static func foldKey(ofHeld name: some StringProtocol) -> String {
        if name.utf8.allSatisfy({ $0 < 0x80 }) { return name.lowercased() }
        var key: [UInt8] = []
        key.reserveCapacity(name.utf8.count + 8)
        GoUTF8.forEachScalar(ArchiveName.bytes(of: String(name))) { scalar in
            if scalar.isASCII {
                key.append(UInt8(ascii: scalar).lowercasedASCII)
                return
            }
            let folded = scalar.properties._caseFolded.unicodeScalars
            // A folding of several scalars (`ß` is `ss`) is bracketed by
            // bytes UTF-8 never holds, so it is one scalar's, never that of
            // the scalars it spells.
            let several = folded.count > 1
            if several { key.append(0xF8) }
            for part in folded { key.append(contentsOf: part.utf8) }
            if several { key.append(0xF9) }
        }
        return ArchiveName.held(key)
    }
}

extension UInt8 {
    fileprivate var lowercasedASCII: UInt8 {
        self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z") ? self + 32 : self
    }
}
