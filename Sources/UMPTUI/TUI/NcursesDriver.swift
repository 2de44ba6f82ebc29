// The only code that calls ncurses: start and stop curses mode, read keys and mouse events, and
// draw a Canvas, writing only the cells that changed since the last frame (as SwiftTUI does).
// Signals, the crash handler and the stderr capture live here too, since they wrap curses mode.

@preconcurrency import CNcurses
import Dispatch
import Foundation
import Synchronization

final class NcursesDriver {
    private(set) var theme: Theme
    private var previous: Canvas?
    private var pairs: [Int32: Int16] = [:]
    private var nextPair: Int16 = 1
    private var stderrFile: URL?
    private var signalSources: [DispatchSourceSignal] = []
    /// Set by SIGINT, SIGTERM or SIGHUP; the read loop checks it between keys.
    static let caughtSignal = Atomic<Int32>(0)

    struct Options {
        var noColor: Bool
        var mouse: Bool
    }

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    /// Enters curses mode. Call `stop()` on every way out.
    init(options: Options) throws {
        // newterm, unlike initscr, returns nil for a TERM without terminfo instead of exiting.
        let term = ProcessInfo.processInfo.environment["TERM"] ?? ""
        guard let output = fdopen(1, "w"), let input = fdopen(0, "r"), let screen = newterm(nil, output, input) else {
            throw StartError(description: "umptui: cannot use the terminal \"\(term)\" (no terminfo entry for it?); try TERM=xterm-256color")
        }
        _ = set_term(screen)
        // Signals that end the program: ignore them at the C level (so ncurses installs no handler
        // that exits at once) and watch them through Dispatch on a global queue.
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { NcursesDriver.caughtSignal.store(sig, ordering: .sequentiallyConsistent) }
            src.resume()
            signalSources.append(src)
        }
        // What is written to stderr in curses mode would be lost on the alternate screen.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("umptui-stderr-\(getpid())")
        let fd = open(file.path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        if fd >= 0 {
            unlink(file.path)
            umptui_capture_stderr(fd)
        }
        umptui_install_crash_handler()
        cbreak()
        noecho()
        nonl()
        keypad(umptui_stdscr(), true)
        // Home and End arrive in several spellings (xterm's SS3 and CSI forms, the VT220 ones that
        // tmux and screen send whatever TERM says); teach ncurses all of them.
        for (seq, key) in [("\u{1B}[1~", KEY_HOME), ("\u{1B}[7~", KEY_HOME), ("\u{1B}[H", KEY_HOME), ("\u{1B}OH", KEY_HOME),
                           ("\u{1B}[4~", KEY_END), ("\u{1B}[8~", KEY_END), ("\u{1B}[F", KEY_END), ("\u{1B}OF", KEY_END)] {
            _ = define_key(seq, key)
        }
        curs_set(0)
        set_escdelay(25)
        var colors = 0
        if has_colors() && !options.noColor {
            start_color()
            use_default_colors()
            colors = Int(umptui_colors())
        }
        theme = Theme.choose(colors: colors, noColor: options.noColor)
        if options.mouse {
            _ = mousemask(umptui_mouse_mask(), nil)
            mouseinterval(0)
        }
        wtimeout(umptui_stdscr(), 100)
    }

    /// Leaves curses mode and shows what was written to stderr meanwhile.
    func stop() {
        umptui_remove_crash_handler()
        endwin()
        umptui_replay_stderr()
        for s in signalSources { s.cancel() }
        signalSources = []
    }

    var size: (width: Int, height: Int) { (Int(umptui_cols()), Int(umptui_lines())) }

    // MARK: Input

    /// The next key, or nil after `timeout` milliseconds.
    func readKey(timeout: Int) -> Key? {
        wtimeout(umptui_stdscr(), Int32(timeout))
        var ch: wint_t = 0
        let r = wget_wch(umptui_stdscr(), &ch)
        if r == ERR { return nil }
        if r == KEY_CODE_YES { return functionKey(Int32(ch)) }
        switch ch {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 127, 8: return .backspace
        default:
            guard let scalar = Unicode.Scalar(UInt32(ch)) else { return nil }
            if scalar.value < 32 { return nil }
            return .char(Character(scalar))
        }
    }

    private func functionKey(_ k: Int32) -> Key? {
        switch k {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_ENTER: return .enter
        case KEY_BACKSPACE: return .backspace
        case KEY_DC: return .delete
        case umptui_key_btab(): return .backTab
        case umptui_key_resize():
            previous = nil
            return .resize
        case umptui_key_mouse():
            var ev = MEVENT()
            guard getmouse(&ev) == OK else { return nil }
            let b = ev.bstate
            let kind: MouseEvent.Kind
            if umptui_mouse_is_wheel_up(b) != 0 { kind = .wheelUp }
            else if umptui_mouse_is_wheel_down(b) != 0 { kind = .wheelDown }
            else if umptui_mouse_is_click(b) != 0 { kind = .click }
            else { return nil }
            return .mouse(MouseEvent(kind: kind, x: Int(ev.x), y: Int(ev.y)))
        default:
            for n in 1...12 where k == umptui_key_f(Int32(n)) { return .f(n) }
            return nil
        }
    }

    // MARK: Output

    /// Draws `canvas`, touching only the cells that differ from the last frame.
    func draw(_ canvas: Canvas) {
        let last = previous.flatMap { $0.width == canvas.width && $0.height == canvas.height ? $0 : nil }
        let full = last == nil
        if full { werase(umptui_stdscr()) }
        var run = ""
        for y in 0..<canvas.height {
            var x = 0
            while x < canvas.width {
                let cell = canvas[x, y]
                if let last, last[x, y] == cell { x += 1; continue }
                // A run of changed cells of one style is written with one call.
                let start = x
                run.removeAll(keepingCapacity: true)
                while x < canvas.width {
                    let c = canvas[x, y]
                    if c.role != cell.role || c.mark != cell.mark { break }
                    if let last, last[x, y] == c, x > start { break }
                    run.append(c.char)
                    x += 1
                }
                // The bottom-right cell: writing it would scroll the screen on some terminals.
                if y == canvas.height - 1 && x == canvas.width && run.count > 1 { run.removeLast() }
                else if y == canvas.height - 1 && x == canvas.width && run.count == 1 { continue }
                _ = umptui_attrset(attributes(theme.style(cell.role, cell.mark)))
                _ = mvaddstr(Int32(y), Int32(start), run)
            }
        }
        _ = umptui_attrset(0)
        wnoutrefresh(umptui_stdscr())
        doupdate()
        previous = canvas
    }

    /// Forget what is on screen: the next draw repaints everything (after Ctrl-Z and fg).
    func invalidate() {
        previous = nil
        clearok(umptui_stdscr(), true)
    }

    private func attributes(_ s: Style) -> Int32 {
        var a: Int32 = 0
        if s.attrs.contains(.bold) { a |= umptui_a_bold() }
        if s.attrs.contains(.reverse) { a |= umptui_a_reverse() }
        if s.attrs.contains(.underline) { a |= umptui_a_underline() }
        if s.attrs.contains(.dim) { a |= umptui_a_dim() }
        if theme.kind != .mono, s.fg != -1 || s.bg != -1 {
            a |= umptui_color_pair(Int32(pair(s.fg, s.bg)))
        }
        return a
    }

    /// A colour pair per (fg, bg), made on first use.
    private func pair(_ fg: Int16, _ bg: Int16) -> Int16 {
        let key = Int32(fg) << 16 | Int32(UInt16(bitPattern: bg))
        if let p = pairs[key] { return p }
        guard Int32(nextPair) < umptui_color_pairs() else { return 0 }
        let p = nextPair
        nextPair += 1
        init_pair(p, fg, bg)
        pairs[key] = p
        return p
    }
}
