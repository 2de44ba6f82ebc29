// Renders a Canvas as terminal escapes (ECMA-48: CUP, SGR with 256-colour extensions), only the
// cells that differ from the previous frame: what `export --cast` puts in each "o" event. The
// same Theme as the ncurses driver turns roles and marks into colours.

enum AnsiDriver {
    /// The escapes that turn the terminal showing `previous` (nil: a fresh terminal) into `next`.
    /// Both canvases must have the same size.
    static func diff(from previous: Canvas?, to next: Canvas, theme: Theme) -> String {
        var out = ""
        if previous == nil { out += "\u{1b}[?25l\u{1b}[0m\u{1b}[H\u{1b}[2J" }
        var current: Style? = previous == nil ? Style() : nil
        var cursor: (Int, Int)? = nil
        for y in 0..<next.height {
            for x in 0..<next.width {
                let cell = next[x, y]
                let style = theme.style(cell.role, cell.mark)
                if let p = previous {
                    let old = p[x, y]
                    if old.char == cell.char && theme.style(old.role, old.mark) == style { continue }
                } else if cell.char == " " && style == Style() {
                    continue
                }
                if cursor.map({ $0 != (x, y) }) ?? true { out += "\u{1b}[\(y + 1);\(x + 1)H" }
                if current != style {
                    out += sgr(style)
                    current = style
                }
                out.append(cell.char)
                // The last column leaves the cursor where it is (pending wrap): always move again.
                cursor = x + 1 < next.width ? (x + 1, y) : nil
            }
        }
        if current != Style() && !out.isEmpty { out += "\u{1b}[0m" }
        return out
    }

    /// SGR for a style, from a reset: attributes, then colours.
    static func sgr(_ s: Style) -> String {
        var codes = ["0"]
        if s.attrs.contains(.bold) { codes.append("1") }
        if s.attrs.contains(.dim) { codes.append("2") }
        if s.attrs.contains(.underline) { codes.append("4") }
        if s.attrs.contains(.reverse) { codes.append("7") }
        if s.fg >= 0 { codes.append(s.fg < 8 ? "\(30 + s.fg)" : "38;5;\(s.fg)") }
        if s.bg >= 0 { codes.append(s.bg < 8 ? "\(40 + s.bg)" : "48;5;\(s.bg)") }
        return "\u{1b}[" + codes.joined(separator: ";") + "m"
    }
}

/// Renders canvases as a self-contained HTML page: one <pre> per screen, colours as inline CSS
/// classes, no scripts and nothing fetched.
enum HTMLDriver {
    /// Every style the theme can give a cell, numbered: the page's CSS classes.
    static func classes(_ theme: Theme) -> [Style: Int] {
        var out: [Style: Int] = [:]
        for mark in Mark.all {
            for role in Role.allCases {
                let s = theme.style(role, mark)
                if s != Style(), out[s] == nil { out[s] = out.count }
            }
        }
        return out
    }

    static func head(title: String, theme: Theme) -> String {
        var css = "body{background:#1c1c1c;color:#d0d0d0;font-family:sans-serif}"
            + "pre{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:13px;line-height:1.2;background:#000;color:#d0d0d0;padding:4px;display:inline-block}"
            + "h2{font-size:14px;font-weight:normal;color:#aaa}\n"
        for (style, k) in classes(theme).sorted(by: { $0.value < $1.value }) { css += ".s\(k){\(declarations(style))}\n" }
        return """
            <!DOCTYPE html>
            <html><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            \(css)</style></head>
            <body>
            <h1>\(escape(title))</h1>
            """
    }

    static let tail = "</body></html>"

    /// One screen as a section with a <pre>, runs of one style in one span.
    static func screen(label: String, canvas c: Canvas, theme: Theme, classes: [Style: Int]? = nil) -> String {
        let classes = classes ?? HTMLDriver.classes(theme)
        var body = "<section>\n<h2>\(escape(label))</h2>\n<pre>"
        for y in 0..<c.height {
            var x = 0
            while x < c.width {
                let style = theme.style(c[x, y].role, c[x, y].mark)
                var run = ""
                while x < c.width, theme.style(c[x, y].role, c[x, y].mark) == style {
                    run.append(c[x, y].char)
                    x += 1
                }
                if let k = classes[style] { body += "<span class=\"s\(k)\">\(escape(run))</span>" } else { body += escape(run) }
            }
            body += "\n"
        }
        return body + "</pre>\n</section>"
    }

    static func page(title: String, screens: [(label: String, canvas: Canvas)], theme: Theme) -> String {
        let classes = classes(theme)
        return ([head(title: title, theme: theme)] + screens.map { screen(label: $0.label, canvas: $0.canvas, theme: theme, classes: classes) }
                + [tail]).joined(separator: "\n") + "\n"
    }

    private static func declarations(_ s: Style) -> String {
        var fg = s.fg >= 0 ? xterm(Int(s.fg)) : "#d0d0d0"
        var bg = s.bg >= 0 ? xterm(Int(s.bg)) : "#000000"
        if s.attrs.contains(.reverse) { swap(&fg, &bg) }
        var out = "color:\(fg);"
        if s.bg >= 0 || s.attrs.contains(.reverse) { out += "background:\(bg);" }
        if s.attrs.contains(.bold) { out += "font-weight:bold;" }
        if s.attrs.contains(.dim) { out += "opacity:0.6;" }
        if s.attrs.contains(.underline) { out += "text-decoration:underline;" }
        return out
    }

    /// The xterm 256-colour palette as #rrggbb.
    static func xterm(_ n: Int) -> String {
        let base16 = ["000000", "cd0000", "00cd00", "cdcd00", "0000ee", "cd00cd", "00cdcd", "e5e5e5",
                      "7f7f7f", "ff0000", "00ff00", "ffff00", "5c5cff", "ff00ff", "00ffff", "ffffff"]
        if n < 16 { return "#" + base16[max(0, n)] }
        if n < 232 {
            let i = n - 16
            let levels = [0, 95, 135, 175, 215, 255]
            return "#" + [levels[i / 36], levels[(i / 6) % 6], levels[i % 6]].map(hex2).joined()
        }
        let v = 8 + (n - 232) * 10
        return "#" + hex2(v) + hex2(v) + hex2(v)
    }

    private static func hex2(_ v: Int) -> String {
        let s = String(v, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
