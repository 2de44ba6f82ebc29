#!/usr/bin/env python3
"""Checks an `umptui export --cast` file with an independent terminal emulator (pyte):
asciicast v2 line by line, non-decreasing times, one marker per step, and the last frame's
characters equal to a screen printed by `umptui FILE --print-screen COLSxROWS --steps N`.

usage: check-cast.py OUT.cast EXPECTED-SCREEN.txt
"""
import json
import sys

import pyte


def main(cast_path, screen_path):
    with open(cast_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2, header
    for key in ("width", "height", "timestamp", "title", "env"):
        assert key in header, f"header lacks {key}"
    screen = pyte.Screen(header["width"], header["height"])
    stream = pyte.Stream(screen)
    last, markers = -1.0, 0
    for n, line in enumerate(lines[1:], start=2):
        t, kind, data = json.loads(line)
        assert t >= last, f"line {n}: time {t} before {last}"
        last = t
        if kind == "o":
            stream.feed(data)
        elif kind == "m":
            markers += 1
        else:
            raise AssertionError(f"line {n}: unknown event type {kind!r}")
    got = "\n".join(row.rstrip() for row in screen.display).rstrip("\n")
    with open(screen_path, encoding="utf-8") as f:
        want = f.read().rstrip("\n")
    want = "\n".join(row.rstrip() for row in want.split("\n"))
    if got != want:
        for i, (a, b) in enumerate(zip(got.split("\n"), want.split("\n"))):
            if a != b:
                raise AssertionError(f"row {i + 1} differs:\n  cast:   {a!r}\n  screen: {b!r}")
        raise AssertionError("the screens differ in length")
    print(f"{cast_path}: asciicast v2, {markers} markers, last frame equals {screen_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
