"""Finding 7: control characters from a case database must never reach the terminal raw.

An attacker who can write ``case.sqlite`` plants ESC sequences (cursor up, erase line, carriage
return) in a case field or an audit entry, hoping to paint "Audit chain intact" over the BROKEN line
of ``case verify``. Every command's output goes through one sanitiser: the bytes arrive escaped and
visible (``\\x1b``), JSON stays valid JSON carrying the exact value.
"""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from engine.cli import print_json, safe_text
from tests.engine.test_cases_support import new_case
from tests.security.case_forgery import cli

PAINT = "\x1b[1A\x1b[2K\rAudit chain intact: 1 entries\x07\x9b2J\u202e"
RAW = ("\x1b", "\r", "\x07", "\x9b", "\u202e")


def _plant(column: str) -> str:
    with new_case() as case:
        folder = case.folder
    conn = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    conn.execute(f"UPDATE case_info SET {column} = ?", (f"Robbery{PAINT}",))
    conn.execute("UPDATE audit SET action = ? WHERE seq = 1", (f"case.create{PAINT}",))
    conn.close()
    return str(folder)


def _clean(text: str) -> None:
    for ch in RAW:
        assert ch not in text, repr(text)


@pytest.mark.parametrize("argv", [("case", "verify", "2026-0042"), ("case", "show", "2026-0042"),
                                  ("case", "list"), ("case", "audit", "2026-0042"),
                                  ("case", "verify", "2026-0042", "--json"), ("case", "show", "2026-0042", "--json"),
                                  ("case", "list", "--json")])
def test_escape_bytes_in_a_case_reach_no_terminal(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    _plant("title")
    code, out, err = cli(capsys, *argv)
    _clean(out)
    _clean(err)
    if "--json" in argv:
        json.loads(out)  # still valid JSON
    if argv[1] == "verify":
        assert code == 3
    if argv[1] == "verify" and "--json" not in argv:
        assert "BROKEN" in out and "\\x1b" in out  # the attempt is visible, not executed
    if "--json" in argv and argv[1] != "list":
        assert "\\u001b" in out  # JSON carries the exact value, escaped
    if argv[1] in ("show", "list") and "--json" not in argv:
        assert "\\x1b" in out


def test_error_messages_are_sanitised_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "case", "show", f"NO-SUCH{PAINT}")
    assert code == 1
    _clean(out + err)


def test_json_keeps_the_exact_value() -> None:
    value = f"a{PAINT}b\n\t"
    out = json.dumps(value, ensure_ascii=False)
    import io

    buf = io.StringIO()
    real = sys.stdout
    sys.stdout = buf
    try:
        print_json({"v": value})
    finally:
        sys.stdout = real
    _clean(buf.getvalue())
    assert json.loads(buf.getvalue())["v"] == value and out


def test_control_ordinary_text_is_untouched() -> None:
    text = "Case 2026-0042: Überfall — Zoë, 北京\ttab\nnext line"
    assert safe_text(text) == text
    assert safe_text("\x1b[2K") == "\\x1b[2K" and safe_text("\u202e") == "\\u202e"
