/// A count of bytes as people read it in a message: in the largest unit
/// (B, KiB, MiB, GiB, TiB) that keeps it at least 1, rounded down, so a
/// small limit never reads as "0 MiB".
public func readableByteCount(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var unit = 0
    while unit < units.count - 1, bytes >> (10 * (unit + 1)) > 0 { unit += 1 }
    return "\(bytes >> (10 * unit)) \(units[unit])"
}
