// The values of `dma pattern=` and `dma size=`.

enum DMAPatterns {
    static let hint = "pattern is one of seq, random, stride:SIZE, tile:WxH@PITCH"

    /// The most accesses one `dma` step makes (per pass × passes). A step near it is long (tens of
    /// nanoseconds an access in a release build, far more in a debug one): the loop reports progress
    /// and stops on Esc every 65,536 accesses (StepJournal.poll), so it is never a hang.
    public static let maxAccesses: UInt64 = 1 << 30
    /// The most accesses one pass makes (the offsets of a pass are kept: 8 bytes each).
    public static let maxAccessesPerPass: UInt64 = 1 << 24
    /// The largest burst (`size=`): one access touches at most its first and last page.
    static let maxBurst: UInt64 = 1 << 30

    /// `seq`, `random`, `stride:SIZE`, `tile:WxH@PITCH`.
    static func parse(_ v: String) throws(ValueError) -> DMAPattern {
        switch v {
        case "seq": return .seq
        case "random": return .random
        case _ where v.hasPrefix("stride:"):
            let stride = try part(String(v.dropFirst(7)), at: 7, "stride")
            return .stride(stride)
        case _ where v.hasPrefix("tile:"):
            return try tile(String(v.dropFirst(5)), whole: v)
        default:
            throw ValueError("unknown value '\(v)' for pattern",
                             hint: Suggest.prefix(v, among: ["seq", "random"]) + hint)
        }
    }

    /// A DMA burst: at least one byte.
    static func burstSize(_ v: String) throws(ValueError) -> UInt64 {
        let size = try Literal.size(v)
        guard size >= 1 else { throw ValueError("size must be at least 1 byte, got '\(v)'") }
        guard size <= maxBurst else { throw ValueError("size must be at most 1G (one DMA burst), got '\(v)'") }
        return size
    }

    /// `count=` or `passes=`: at least 1, at most `maxAccesses` (or per pass, `maxAccessesPerPass`).
    static func accesses(_ option: String, max: UInt64) -> @Sendable (String) throws(ValueError) -> UInt64 {
        { (v: String) throws(ValueError) in
            let n = try Literal.count(v)
            guard n >= 1 else { throw ValueError("\(option) must be at least 1, got '\(v)'") }
            guard n <= max else {
                throw ValueError("\(option) must be at most \(max) (a dma step makes at most \(maxAccesses) accesses, \(maxAccessesPerPass) a pass), got '\(v)'")
            }
            return n
        }
    }

    /// `WxH@PITCH`: W bytes wide, H rows, PITCH bytes from one row to the next (at least W).
    private static func tile(_ spec: String, whole: String) throws(ValueError) -> DMAPattern {
        let shape = ValueError("expected tile:WxH@PITCH such as tile:640x480@2560, got '\(whole)'", hint: hint)
        guard let at = spec.firstIndex(of: "@") else { throw shape }
        let dims = spec[..<at]
        // A hex width such as 0x280 has its own 'x': look for the separator after the prefix.
        let searchFrom = dims.hasPrefix("0x") || dims.hasPrefix("0X") ? dims.index(dims.startIndex, offsetBy: 2) : dims.startIndex
        guard let cross = dims[searchFrom...].firstIndex(where: { $0 == "x" || $0 == "X" }) else { throw shape }
        let widthText = String(dims[..<cross])
        let heightText = String(dims[dims.index(after: cross)...])
        let pitchText = String(spec[spec.index(after: at)...])
        let base = 5  // "tile:"
        let width = try part(widthText, at: base, "tile width")
        let height = try part(heightText, at: base + widthText.count + 1, "tile height")
        let pitch = try part(pitchText, at: base + dims.count + 1, "tile pitch")
        guard pitch >= width else {
            throw ValueError("tile pitch \(pitchText) is smaller than its width \(widthText)", offset: base + dims.count + 1)
        }
        // The tile's last row starts at (height - 1) × pitch: it must lie in an address space.
        let (span, overflow) = (height - 1).multipliedReportingOverflow(by: pitch)
        guard !overflow, span <= 1 << 46 else {
            throw ValueError("a \(heightText)-row tile with pitch \(pitchText) spans more than a process's address space (64T)", offset: base + widthText.count + 1)
        }
        return .tile(width: width, height: height, pitch: pitch)
    }

    /// A positive size inside the pattern; errors point at it.
    private static func part(_ text: String, at offset: Int, _ what: String) throws(ValueError) -> UInt64 {
        do throws(ValueError) {
            let value = try Literal.addressSpaceSize(text)
            guard value > 0 else { throw ValueError("\(what) must be positive, got '\(text)'") }
            return value
        } catch {
            throw ValueError(error.message, hint: hint, offset: offset + error.offset)
        }
    }
}
