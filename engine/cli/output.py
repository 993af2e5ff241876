"""What every ``sketchface`` command writes passes through here: the terminal sanitiser and JSON output.

Shared by all command modules in :mod:`engine.cli` (import ``print_json`` and ``safe_text`` from here).
Only the command line uses these: the engine core returns values and raises errors, it never prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from engine.manifest import plain as manifest_plain

# Characters a terminal acts on instead of showing: C0 controls but newline and tab, DEL, C1 controls
# (0x9b is CSI on terminals that read 8-bit controls), the bidirectional overrides and isolates that
# reorder what is shown, and the Unicode line and paragraph separators.
_UNSAFE = ({c for c in range(0x20) if c not in (0x09, 0x0A)} | set(range(0x7F, 0xA0))
           | {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)))
_ESCAPED = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}
_JSON_ESCAPED = {c: f"\\u{c:04x}" for c in _UNSAFE}


def safe_text(text: str) -> str:
    """``text`` with every character a terminal would act on written out visibly (``\\x1b``, ``\\u202e``).

    The one sanitiser for everything the command line shows: newlines and tabs stay; ESC sequences,
    carriage returns, backspaces, bells, C1 controls and bidirectional overrides cannot move the
    cursor, repaint a line or reorder text, so a value planted in a case or gallery cannot fake
    what a command printed.
    """
    return text.translate(_ESCAPED)


class SafeStream:
    """A text stream that passes everything written through :func:`safe_text` to the stream it wraps.

    On a terminal's stderr a carriage return that *starts* a write is kept: progress bars redraw
    their line with it (and draw only on terminals), and the rest of that write is sanitised. Every
    other control character is escaped.
    """

    def __init__(self, stream: TextIO, *, keep_leading_cr: bool = False) -> None:
        self._stream = stream
        self._keep_cr = keep_leading_cr

    def write(self, text: str) -> int:
        lead = "\r" if self._keep_cr and text.startswith("\r") and self._tty() else ""
        self._stream.write(lead + safe_text(text[len(lead):]))
        return len(text)

    def _tty(self) -> bool:
        try:
            return bool(self._stream.isatty())
        except (AttributeError, ValueError, OSError):
            return False

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer ...
        return getattr(self._stream, name)


@contextmanager
def sanitised_output() -> Iterator[None]:
    """Route stdout and stderr through :class:`SafeStream` for one command (restored afterwards)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout = SafeStream(out)  # type: ignore[assignment]
    sys.stderr = SafeStream(err, keep_leading_cr=True)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def plain_value(value: Any) -> str:
    """A value as a person reads it in a ``key: value`` listing: a mapping or a list in the manifest's plain
    form (``M=32, ef=16``), never Python's ``{'key': ...}`` repr; a scalar as it is (a digest in full)."""
    return manifest_plain(value) if isinstance(value, dict | list | tuple) else str(value)


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout (for ``--json`` output consumed by scripts).

    Control characters inside strings are written as JSON escapes (``\\u001b``): the document reads
    back to exactly the stored values, and a terminal showing it acts on none of them.
    """
    text = json.dumps(obj, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(text.translate(_JSON_ESCAPED))
    sys.stdout.write("\n")
