/// Texts near a given one, for tests that check two readers of the same
/// input agree on every input, not only on the ones a person wrote down.
public enum TextMutations {
    /// `count` variants of `text`, each with one to three bytes replaced,
    /// inserted or removed, the new bytes mostly ones that mean something
    /// in JSON. The same `seed` gives the same variants.
    public static func variants(of text: [UInt8], count: Int, seed: UInt64) -> [[UInt8]] {
        var generator = SeededGenerator(seed: seed)
        let meaningful = Array(#"{}[]:,"\u0aeE+-.1 tfn"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xFF]
        return (0..<count).map { _ in
            var variant = text
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let place = variant.isEmpty ? 0 : Int.random(in: 0..<variant.count, using: &generator)
                let byte =
                    Bool.random(using: &generator)
                    ? meaningful.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where !variant.isEmpty: variant[place] = byte
                case 1 where !variant.isEmpty: variant.remove(at: place)
                default: variant.insert(byte, at: place)
                }
            }
            return variant
        }
    }
}

/// SplitMix64: a small generator whose sequence a seed fixes, so a test
/// that draws from it checks the same cases on every run.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
