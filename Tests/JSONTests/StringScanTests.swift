import Testing
@testable import JSON

@Suite struct StringScanWordAtATime {
    /// The byte loop the scan must agree with.
    private func expected(_ bytes: [UInt8], from start: Int) -> (end: Int, nonASCII: Bool) {
        var index = start
        var nonASCII = false
        while index < bytes.count, !(bytes[index] == 0x22 || bytes[index] == 0x5C || bytes[index] < 0x20) {
            nonASCII = nonASCII || bytes[index] >= 0x80
            index += 1
        }
        return (index, nonASCII)
    }

    private func scanned(_ bytes: [UInt8], from start: Int) -> (end: Int, nonASCII: Bool) {
        bytes.withUnsafeBufferPointer { buffer in
            var highBits: UInt8 = 0
            let base = buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!
            let end = StringScan.plainEnd(base, from: start, to: bytes.count, highBits: &highBits)
            return (end, highBits & 0x80 != 0)
        }
    }

    @Test func everyByteValueAtEveryPlaceOfTwoWordsStopsWhereTheByteLoopStops() {
        for length in 0...19 {
            for place in 0..<max(length, 1) {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    if place < length { bytes[place] = UInt8(value) }
                    for start in [0, 1, 3] where start <= length {
                        let want = expected(bytes, from: start)
                        let got = scanned(bytes, from: start)
                        #expect(got.end == want.end, "length \(length), byte \(value) at \(place), from \(start)")
                        #expect(got.nonASCII == want.nonASCII, "length \(length), byte \(value) at \(place)")
                    }
                }
            }
        }
    }

    @Test func bytesJustAboveTheSpecialOnesDoNotStopIt() {
        // Neighbours of 0x22, 0x5C and 0x20 after a borrow-prone byte.
        let bytes: [UInt8] = [
            0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xA0, 0xFF, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x01,
        ]
        #expect(scanned(bytes, from: 0).end == 15)
        #expect(scanned(bytes, from: 0).nonASCII)
    }

    @Test func aSpecialByteAfterAMatchInTheSameWordIsFoundAtTheFirst() {
        var bytes = [UInt8](repeating: 0x41, count: 16)
        bytes[9] = 0x22
        bytes[10] = 0x00
        #expect(scanned(bytes, from: 0).end == 9)
        #expect(scanned(bytes, from: 10).end == 10)
        #expect(scanned(bytes, from: 11).end == 16)
    }
}
