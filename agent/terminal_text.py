"""Text that the repository, the model, a sandbox or the genome wrote, made safe to show on
a terminal.

A commit message, a file name or a model's reply can carry escape sequences that the
terminal obeys: OSC 52 writes the clipboard, OSC 0 the window title, CSI 2J and ESC c clear
the screen, and some terminals also take the 8-bit C1 forms (U+009B is CSI). Bidi controls
(U+202A-U+202E, U+2066-U+2069) make a name display in an order that is not its real one.

Every text-mode print of such a string goes through `terminal_safe` (the CLI's `echo`, the
app's line filter); JSON output goes through `terminal_safe_json`, which keeps every string
exact and only spells these characters as \\u escapes.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates."""

_SEQUENCE = re.compile(
    # CSI: colours, cursor moves, clear screen (ESC [ or 8-bit CSI, parameters, final byte)
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    # OSC, DCS, SOS, PM, APC: a string up to BEL or ST, never past a line end
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"
    # any other escape: ESC c (reset), ESC 7, ESC ( B, and a lone introducer
    r"|\x1b[ -/]*[0-~]"
)


def terminal_safe(text: str) -> str:
    """`text` without escape sequences (dropped whole) and control characters, keeping
    newlines and tabs; `text` itself when there is nothing to remove.

    What a sequence cannot be recognised whole (unterminated, unknown) loses its control
    characters and leaves the rest as plain, inert text. Bidi controls are dropped, not
    shown: the name then reads in its real character order, which is what it is on disk.
    """
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub("", _SEQUENCE.sub("", text))


def terminal_safe_json(serialized: str) -> str:
    """JSON text (from json.dumps) with the characters `terminal_safe` removes written as
    \\u escapes instead: it decodes to exactly the same data. json.dumps already escapes C0
    controls, but with ensure_ascii=False it leaves DEL, C1 and bidi controls raw."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", serialized)


def one_line(text: str, limit: int = 300) -> str:
    """`text` as one bounded, terminal-safe line: escape sequences and control characters
    removed (`terminal_safe`), every run of whitespace (newlines too) one space, cut at
    `limit` characters. For untrusted text inside a message: a reason, a link target."""
    line = " ".join(terminal_safe(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
