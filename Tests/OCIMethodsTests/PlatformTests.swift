import JSON
import Testing
@testable import OCIMethods

@Suite struct PlatformTests {
    /// Entries a runtime that normalises platforms as containerd does takes
    /// for the platform asked for, which `matches` (exact) does not.
    @Test(arguments: [
        ("linux/amd64", #"{"os":"linux","architecture":"x86_64"}"#, true),
        ("linux/amd64", #"{"os":"linux","architecture":"x86-64"}"#, true),
        ("linux/amd64", #"{"os":"LINUX","architecture":"AMD64"}"#, true),
        ("linux/amd64", #"{"os":"","architecture":"amd64"}"#, true),
        ("linux/amd64", #"{"architecture":"amd64"}"#, true),
        ("linux/amd64", #"{"os":"linux","architecture":"amd64","variant":"v3"}"#, true),
        ("linux/arm64", #"{"os":"linux","architecture":"aarch64"}"#, true),
        ("linux/arm64/v8", #"{"os":"linux","architecture":"arm64"}"#, true),
        ("linux/arm/v7", #"{"os":"linux","architecture":"armhf"}"#, true),
        ("linux/arm/v7", #"{"os":"linux","architecture":"arm","variant":"7"}"#, true),
        ("linux/arm/v6", #"{"os":"linux","architecture":"armel"}"#, true),
        ("linux/386", #"{"os":"linux","architecture":"i386"}"#, true),
        ("darwin/arm64", #"{"os":"macos","architecture":"arm64"}"#, true),
        // containerd lowers with Go's strings.ToLower: `İ` is `i`, `ı` is not.
        ("linux/amd64", #"{"os":"l\u0130nux","architecture":"amd64"}"#, true),
        ("linux/amd64", #"{"os":"L\u0130NUX","architecture":"AMD64"}"#, true),
        ("linux/amd64", #"{"os":"l\u0131nux","architecture":"amd64"}"#, false),
        ("linux/amd64", #"{"os":"linux","architecture":"arm64"}"#, false),
        ("linux/amd64", #"{"os":"windows","architecture":"amd64"}"#, false),
        ("linux/arm/v7", #"{"os":"linux","architecture":"arm","variant":"v6"}"#, false),
        ("linux/amd64", #"{"os":"linux"}"#, false),
        ("linux/amd64", #"null"#, false),
    ])
    func platformsWrittenOtherwiseAreOnesRuntimesMayTake(asked: String, entry: String, mayBeTaken: Bool) throws {
        let platform = try Platform(asked)
        let node = try JSONParser.parse(entry)
        #expect(platform.mayBeTakenFor(node) == mayBeTaken, "\(asked) \(entry)")
    }

    /// `matches` compares names by their bytes, as Go does (`==` on text
    /// takes the Kelvin sign for `K`); lowered as containerd lowers them,
    /// both are `k`.
    @Test func namesAreMatchedByTheirBytesAndLoweredAsGoLowersThem() throws {
        let platform = Platform(os: "Kos", architecture: "amd64", variant: nil)
        let node = try JSONParser.parse(#"{"os":"\u212Aos","architecture":"amd64"}"#)
        #expect(!platform.matches(node))
        #expect(platform.mayBeTakenFor(node))
    }

    /// What `matches` takes, a runtime that normalises takes too.
    @Test(arguments: [
        ("linux/amd64", #"{"os":"linux","architecture":"amd64"}"#),
        ("linux/amd64", #"{"os":"linux","architecture":"amd64","variant":"v2"}"#),
        ("linux/arm/v7", #"{"os":"linux","architecture":"arm","variant":"v7"}"#),
        ("linux/arm64", #"{"os":"linux","architecture":"arm64","variant":"v8"}"#),
    ])
    func anExactMatchIsOneRuntimesTakeToo(asked: String, entry: String) throws {
        let platform = try Platform(asked)
        let node = try JSONParser.parse(entry)
        #expect(platform.matches(node))
        #expect(platform.mayBeTakenFor(node))
    }

    /// containerd's ranks, counted from the level asked for down, whatever
    /// that level: a variant of `v9223372036854775807` is ranked at once
    /// (listing its levels, as containerd's `platformVector` does, would
    /// not end), and a level written otherwise (`v02`) is never one.
    @Test(arguments: [
        ("linux/amd64/v9223372036854775807", #"{"os":"linux","architecture":"amd64","variant":"v2"}"#, Int.max - 2),
        ("linux/amd64/v9223372036854775807", #"{"os":"linux","architecture":"amd64"}"#, Int.max - 1),
        ("linux/amd64/v9223372036854775807", #"{"os":"linux","architecture":"386"}"#, Int.max),
        ("linux/arm/v9223372036854775807", #"{"os":"linux","architecture":"arm","variant":"v5"}"#, Int.max - 5),
        ("linux/amd64/v3", #"{"os":"linux","architecture":"amd64","variant":"v02"}"#, nil),
        ("linux/amd64/v3", #"{"os":"linux","architecture":"amd64","variant":"v1"}"#, 2),
        ("linux/arm64", #"{"os":"linux","architecture":"arm","variant":"v5"}"#, 4),
    ])
    func runtimeRanksAreCountedNotListed(asked: String, entry: String, rank: Int?) throws {
        #expect(try Platform(asked).runtimeRank(try JSONParser.parse(entry)) == rank)
    }
}
