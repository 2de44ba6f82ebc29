/// Reads a size as the scenario language writes it (`4K`, `2M`, `0x1000`), for command-line options.
public func parseSizeLiteral(_ text: String) -> UInt64? {
    try? Literal.size(text)
}
