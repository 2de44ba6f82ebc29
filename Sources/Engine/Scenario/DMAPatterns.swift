// The values of `dma pattern=` and `dma size=`.

enum DMAPatterns {
    static let hint = "pattern is one of seq, random, stride:SIZE, tile:WxH@PITCH"

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
        return size
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
        return .tile(width: width, height: height, pitch: pitch)
    }

    /// A positive size inside the pattern; errors point at it.
    private static func part(_ text: String, at offset: Int, _ what: String) throws(ValueError) -> UInt64 {
        do throws(ValueError) {
            let value = try Literal.size(text)
            guard value > 0 else { throw ValueError("\(what) must be positive, got '\(text)'") }
            return value
        } catch {
            throw ValueError(error.message, hint: hint, offset: offset + error.offset)
        }
    }
}
