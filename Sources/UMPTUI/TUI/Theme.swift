// Colours by role, as htop assigns them: views name what a cell is (a free frame, a pinned page,
// an error), and a Theme says how that looks with 256 colours, 8 colours or none at all.
// In the monochrome theme bold, reverse and underline carry the marks (changed, related, selected,
// and compare's differs).

enum Role: UInt8, CaseIterable, Sendable {
    case normal, dim, header, headerAccent, footerKey, footerText
    case paneTitle, paneTitleFocused, section, label, address, separator
    case ok, error, warning, note, current, recording
    // Process pages
    case pageUntouched, pageZero, pagePrivate, pageShared, pagePinned, pageSwapped, pageHuge
    // Physical frames
    case frameFree, frameZero, frameKernel, frameUMP, frameDmabuf, frameTable, framePinned
    case owner0, owner1, owner2, owner3, owner4, owner5
    // Devices
    case iopteSmall, iopteLarge, iotlbEntry, iotlbStale, spark
    // Overlays and the prompt
    case overlayBorder, overlayTitle, overlayText, prompt, caret

    static let owners: [Role] = [.owner0, .owner1, .owner2, .owner3, .owner4, .owner5]
    static func owner(_ index: Int) -> Role { owners[((index % owners.count) + owners.count) % owners.count] }
}

/// Terminal attributes, independent of ncurses' bit values.
struct Attributes: OptionSet, Hashable, Sendable {
    let rawValue: UInt8
    static let bold = Attributes(rawValue: 1)
    static let reverse = Attributes(rawValue: 2)
    static let underline = Attributes(rawValue: 4)
    static let dim = Attributes(rawValue: 8)
}

/// A colour: -1 is the terminal's default; 0...7 the ANSI colours; 8...255 the xterm palette.
struct Style: Hashable, Sendable {
    var fg: Int16 = -1
    var bg: Int16 = -1
    var attrs: Attributes = []
}

enum ThemeKind: String, Sendable {
    case color256 = "256-colour", color8 = "8-colour", mono = "monochrome"
}

struct Theme: Sendable {
    let kind: ThemeKind
    private let table: [Style]

    init(_ kind: ThemeKind) {
        self.kind = kind
        var t: [Style] = []
        for mark in Mark.all {
            for role in Role.allCases { t.append(Theme.style(kind, role, mark)) }
        }
        table = t
    }

    @inline(__always) func style(_ role: Role, _ mark: Mark) -> Style {
        table[Int(mark.rawValue) * Role.allCases.count + Int(role.rawValue)]
    }

    /// Picks the theme for a terminal: no colour when asked (NO_COLOR, --no-color) or when it has none.
    static func choose(colors: Int, noColor: Bool) -> Theme {
        if noColor || colors < 8 { return Theme(.mono) }
        return Theme(colors >= 256 ? .color256 : .color8)
    }

    private static func style(_ kind: ThemeKind, _ role: Role, _ mark: Mark) -> Style {
        var s = base(kind, role)
        switch (kind, mark) {
        case (_, .none): break
        // Related beats changed in every theme: a change mark is a faint ground (colour) or an
        // underline (none), the selection's relatives a strong one, so a few relatives show among
        // hundreds of changed cells. The selected cell adds bold (and, without colour, underline).
        case (.mono, .selected):
            s.attrs.formUnion([.reverse, .bold, .underline])
        case (_, .selected):
            s.attrs.formUnion([.reverse, .bold])
        case (.mono, .related):
            s.attrs.insert(.reverse)
        case (.mono, .changed):
            s.attrs.insert(.underline)
        case (.color256, .related):
            s.bg = 33
            s.fg = 231
            s.attrs.insert(.bold)
        case (.color256, .changed):
            s.bg = 236
        case (.color8, .related):
            s.bg = 4
            s.fg = 7
            s.attrs.insert(.bold)
        case (.color8, .changed):
            s.attrs.insert(.underline)
        case (.mono, .differs):
            s.attrs.insert(.reverse)
        case (.color256, .differs):
            s.bg = 89
            if s.fg == -1 || s.fg == 89 { s.fg = 231 }
        case (.color8, .differs):
            s.bg = 5
            if s.fg == 5 || s.fg == -1 { s.fg = 7 }
        }
        return s
    }

    private static func base(_ kind: ThemeKind, _ role: Role) -> Style {
        switch kind {
        case .mono: return mono(role)
        case .color8: return color8(role)
        case .color256: return color256(role)
        }
    }

    private static func mono(_ role: Role) -> Style {
        switch role {
        case .header, .headerAccent, .footerKey, .paneTitleFocused, .overlayTitle, .recording: Style(attrs: [.reverse, .bold])
        case .footerText: Style(attrs: [.reverse])
        case .paneTitle, .section, .error, .current, .caret: Style(attrs: [.bold])
        case .dim, .pageUntouched, .frameFree, .separator: Style(attrs: [.dim])
        default: Style()
        }
    }

    private static func color8(_ role: Role) -> Style {
        // 0 black 1 red 2 green 3 yellow 4 blue 5 magenta 6 cyan 7 white
        switch role {
        case .normal, .overlayText, .prompt: Style()
        case .dim, .separator, .pageUntouched, .frameFree: Style(fg: 7, attrs: [.dim])
        case .header: Style(fg: 0, bg: 6)
        case .headerAccent: Style(fg: 0, bg: 6, attrs: [.bold])
        case .recording: Style(fg: 1, bg: 6, attrs: [.bold])
        case .footerKey: Style(fg: 0, bg: 6, attrs: [.bold])
        case .footerText: Style(fg: 7, bg: 4)
        case .paneTitle: Style(fg: 6, attrs: [.bold])
        case .paneTitleFocused: Style(fg: 0, bg: 6, attrs: [.bold])
        case .section: Style(fg: 3, attrs: [.bold])
        case .label: Style(fg: 6)
        case .address: Style(fg: 2)
        case .ok: Style(fg: 2)
        case .error: Style(fg: 1, attrs: [.bold])
        case .warning: Style(fg: 3, attrs: [.bold])
        case .note: Style(fg: 6)
        case .current: Style(fg: 3, attrs: [.bold])
        case .pageZero, .frameZero: Style(fg: 6)
        case .pagePrivate: Style(fg: 2)
        case .pageShared: Style(fg: 3)
        case .pagePinned, .framePinned: Style(fg: 1, attrs: [.bold])
        case .pageSwapped: Style(fg: 5)
        case .pageHuge: Style(fg: 4, attrs: [.bold])
        case .frameKernel: Style(fg: 7)
        case .frameUMP: Style(fg: 5, attrs: [.bold])
        case .frameDmabuf: Style(fg: 5)
        case .frameTable: Style(fg: 4)
        case .owner0: Style(fg: 2)
        case .owner1: Style(fg: 3)
        case .owner2: Style(fg: 5)
        case .owner3: Style(fg: 6)
        case .owner4: Style(fg: 4)
        case .owner5: Style(fg: 1)
        case .iopteSmall: Style()
        case .iopteLarge: Style(fg: 2, attrs: [.bold])
        case .iotlbEntry: Style(fg: 6)
        case .iotlbStale: Style(fg: 1, attrs: [.bold])
        case .spark: Style(fg: 3)
        case .overlayBorder: Style(fg: 6)
        case .overlayTitle: Style(fg: 0, bg: 6, attrs: [.bold])
        case .caret: Style(fg: 1, attrs: [.bold])
        }
    }

    private static func color256(_ role: Role) -> Style {
        switch role {
        case .normal, .overlayText, .prompt: Style()
        case .dim, .separator: Style(fg: 244)
        case .pageUntouched, .frameFree: Style(fg: 240)
        case .header: Style(fg: 231, bg: 24)
        case .headerAccent: Style(fg: 220, bg: 24, attrs: [.bold])
        case .recording: Style(fg: 203, bg: 24, attrs: [.bold])
        case .footerKey: Style(fg: 16, bg: 74, attrs: [.bold])
        case .footerText: Style(fg: 252, bg: 236)
        case .paneTitle: Style(fg: 74, attrs: [.bold])
        case .paneTitleFocused: Style(fg: 16, bg: 74, attrs: [.bold])
        case .section: Style(fg: 179, attrs: [.bold])
        case .label: Style(fg: 110)
        case .address: Style(fg: 114)
        case .ok: Style(fg: 114)
        case .error: Style(fg: 203, attrs: [.bold])
        case .warning: Style(fg: 214, attrs: [.bold])
        case .note: Style(fg: 152)
        case .current: Style(fg: 220, attrs: [.bold])
        case .pageZero, .frameZero: Style(fg: 117)
        case .pagePrivate: Style(fg: 78)
        case .pageShared: Style(fg: 179)
        case .pagePinned, .framePinned: Style(fg: 203, attrs: [.bold])
        case .pageSwapped: Style(fg: 141)
        case .pageHuge: Style(fg: 75, attrs: [.bold])
        case .frameKernel: Style(fg: 250)
        case .frameUMP: Style(fg: 213, attrs: [.bold])
        case .frameDmabuf: Style(fg: 176)
        case .frameTable: Style(fg: 68)
        case .owner0: Style(fg: 78)
        case .owner1: Style(fg: 179)
        case .owner2: Style(fg: 170)
        case .owner3: Style(fg: 80)
        case .owner4: Style(fg: 111)
        case .owner5: Style(fg: 209)
        case .iopteSmall: Style(fg: 252)
        case .iopteLarge: Style(fg: 78, attrs: [.bold])
        case .iotlbEntry: Style(fg: 80)
        case .iotlbStale: Style(fg: 203, attrs: [.bold])
        case .spark: Style(fg: 220)
        case .overlayBorder: Style(fg: 74)
        case .overlayTitle: Style(fg: 16, bg: 74, attrs: [.bold])
        case .caret: Style(fg: 203, attrs: [.bold])
        }
    }
}
