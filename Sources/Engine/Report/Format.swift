// How numbers print, in one place: sizes, addresses, durations, one decimal, counts with plurals.
// The narration, the JSON-free text outputs and the TUI all use these; no view formats on its own.

/// 8388608 → "8 MiB", 4096 → "4 KiB", 1234 → "1234 B": the narration's sizes, exact where short.
public func formatSize(_ bytes: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
    for (unit, name) in units where bytes >= unit {
        if bytes % unit == 0 { return "\(bytes / unit) \(name)" }
        // Exact in a smaller unit when that stays short (8 MiB + 4 KiB → 8196 KiB).
        if let (small, smallName) = units.first(where: { bytes % $0.0 == 0 && bytes / $0.0 < 10000 }) {
            return "\(bytes / small) \(smallName)"
        }
        // Tenths without overflow: whole units, then the remainder in tenths.
        var whole = bytes / unit
        var tenth = ((bytes % unit) * 10 + unit / 2) / unit
        if tenth == 10 { whole += 1; tenth = 0 }
        return "\(whole).\(tenth) \(name)"
    }
    return "\(bytes) B"
}

/// 4096 → "4K", 2 MiB → "2M": a page size, always exact.
public func formatSizeShort(_ bytes: UInt64) -> String {
    for (unit, name) in [(UInt64(1) << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")] where bytes >= unit && bytes % unit == 0 {
        return "\(bytes / unit)\(name)"
    }
    return "\(bytes)"
}

/// Sizes as the panes write them, short rather than exact: 4K, 132K, 8M, 1.5G, 0. One format:
/// a tenth only when it is not zero, so 3.02M is "3M" as 2M is, never "3.0M" beside "2M".
public func formatSizeCompact(_ bytes: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")]
    for (unit, name) in units where bytes >= unit {
        if bytes % unit == 0 { return "\(bytes / unit)\(name)" }
        if bytes / unit >= 100 || unit == 1 << 10 { return "\((bytes + unit / 2) / unit)\(name)" }
        let tenths = (bytes * 10 + unit / 2) / unit
        return tenths % 10 == 0 ? "\(tenths / 10)\(name)" : "\(tenths / 10).\(tenths % 10)\(name)"
    }
    return bytes == 0 ? "0" : "\(bytes)B"
}

/// 0x7ffff7efe000.
public func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
public func hex(_ v: Int) -> String { "0x" + String(v, radix: 16) }

/// One decimal place, without Foundation: 91.25 → "91.3".
/// A percentage to one decimal that never rounds to 100.0 unless it is 100, nor to 0.0 unless it
/// is 0: "4798 hits (100.0%), 2 misses" would say no miss happened.
public func percentText(_ p: Double) -> String {
    var tenths = Int((p * 10).rounded())
    if p < 100 && tenths >= 1000 { tenths = 999 }
    if p > 0 && tenths <= 0 { tenths = 1 }
    return "\(tenths / 10).\(abs(tenths % 10))"
}

public func oneDecimal(_ v: Double) -> String {
    let tenths = Int((v * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// A duration in the narration: 300 ns, 1.5 µs, 4.5 ms.
public func formatNs(_ ns: Int) -> String {
    if ns >= 1_000_000 { return oneDecimal(Double(ns) / 1e6) + " ms" }
    if ns >= 1_000 { return oneDecimal(Double(ns) / 1e3) + " µs" }
    return "\(ns) ns"
}

/// A duration in a pane, without spaces: 300ns, 1.5us, 4.5ms.
public func formatNsCompact(_ ns: Int) -> String {
    if ns >= 1_000_000 { return oneDecimal(Double(ns) / 1e6) + "ms" }
    if ns >= 1_000 { return oneDecimal(Double(ns) / 1e3) + "us" }
    return "\(ns)ns"
}

/// "4K|2M|1G" for a page-size bitmap (AMD's 40 sizes: "every power of two from 4K up").
public func formatPageSizes(_ bitmap: UInt64) -> String {
    if bitmap.nonzeroBitCount > 8 { return "every power of two from \(formatSizeShort(UInt64(1) << UInt64(bitmap.trailingZeroBitCount))) up" }
    var parts: [String] = []
    var b = bitmap
    while b != 0 {
        parts.append(formatSizeShort(UInt64(1) << UInt64(b.trailingZeroBitCount)))
        b &= b - 1
    }
    return parts.joined(separator: "|")
}

/// The same, as the DEVICE pane's title writes it: at most five sizes, "4K..2048T (any 2^n)" for AMD.
public func formatPageSizesCompact(_ bitmap: UInt64) -> String {
    var sizes: [String] = []
    var anyCount = 0
    for bit in 12..<52 where bitmap & (1 << UInt64(bit)) != 0 {
        anyCount += 1
        if sizes.count < 5 { sizes.append(formatSizeCompact(1 << UInt64(bit))) }
    }
    if anyCount > 5 { return "4K..\(formatSizeCompact(1 << 51)) (any 2^n)" }
    return sizes.isEmpty ? "no IOMMU" : sizes.joined(separator: "|")
}

/// "1 page", "3 pages"; `many` for the irregular ones ("entry", "entries").
public func plural(_ n: Int, _ one: String, _ many: String? = nil) -> String {
    "\(n) " + (n == 1 ? one : many ?? one + "s")
}

/// "1 page is", "3 pages are".
public func pluralIsAre(_ n: Int, _ one: String, _ many: String? = nil) -> String {
    plural(n, one, many) + (n == 1 ? " is" : " are")
}
