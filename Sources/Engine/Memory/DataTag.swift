// What a frame holds: not bytes, but who wrote them last and at which step, so a read through a
// pin, a pipe or a device can say whose data it sees (and whether it should see it at all).

/// A frame's content as one word: zero-filled, or written by a process's CPU or a device's DMA at a step.
public struct DataTag: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Zero-filled: a fresh page that nobody has written (clear_page), or a free frame.
    public static let zero = DataTag(rawValue: 0)

    private static let deviceBit: UInt64 = 1 << 63
    private static let fileBit: UInt64 = 1 << 62

    /// Written by process `pid` (through its page table, or a buffer the kernel filled for it).
    public static func process(pid: Int32, step: Int) -> DataTag {
        DataTag(rawValue: UInt64(UInt32(bitPattern: pid)) << 32 | UInt64(UInt32(clamping: max(step, 0))))
    }

    /// Written by device `index`'s DMA.
    public static func device(_ index: Int, step: Int) -> DataTag {
        DataTag(rawValue: deviceBit | UInt64(UInt32(clamping: max(index, 0))) << 32 | UInt64(UInt32(clamping: max(step, 0))))
    }

    /// What file `index` (EngineState.files) holds on disk, read into the page cache.
    public static func file(_ index: Int) -> DataTag {
        DataTag(rawValue: fileBit | UInt64(UInt32(clamping: max(index, 0))) << 32)
    }

    public enum Writer: Hashable, Sendable {
        case none
        case process(pid: Int32)
        case device(index: Int)
        case file(index: Int)
    }

    public var writer: Writer {
        if rawValue == 0 { return .none }
        let id = (rawValue & ~(DataTag.deviceBit | DataTag.fileBit)) >> 32
        if rawValue & DataTag.fileBit != 0 { return .file(index: Int(id)) }
        return rawValue & DataTag.deviceBit != 0 ? .device(index: Int(id)) : .process(pid: Int32(truncatingIfNeeded: id))
    }

    /// The step that wrote it (0 for zero-filled).
    public var step: Int { Int(rawValue & 0xffff_ffff) }
}

extension EngineState {
    /// `app@12`, `nic@5`, or nil for zero-filled data: the spelling of the JSON state's `data`.
    public func dataName(_ tag: DataTag) -> String? {
        switch tag.writer {
        case .none: return nil
        case let .process(pid):
            let name = processes.first { $0.meta.pid == pid }?.meta.name ?? "pid \(pid)"
            return "\(name)@\(tag.step)"
        case let .device(index):
            return "\(index < devices.count ? devices[index].name : "device \(index)")@\(tag.step)"
        case let .file(index):
            return "file:\(index < files.count ? files[index].name : "\(index)")"
        }
    }

    /// The words a narration uses: "data app@12 (app wrote it at step 12)", or "zero-filled data".
    public func describeData(_ tag: DataTag) -> String {
        guard let name = dataName(tag) else { return "zero-filled data" }
        if case .file = tag.writer { return "data \(name) (as the file holds it on disk)" }
        let who = name.split(separator: "@").first.map(String.init) ?? name
        return "data \(name) (\(who) wrote it at step \(tag.step))"
    }
}
