"""``sketchface`` command line: the same engine as the desktop app, headless; a front-end over the use cases.

This package is the whole command line. Each area contributes its sub-commands through a
``register(subparsers)`` function in its own module here (``engine.cli.<area>``, listed in
``_COMMAND_MODULES``); a handler is stored as ``func`` on the parsed arguments and returns the process
exit code. Nothing in the engine core imports this package (an import-linter contract holds it).

Shared CLI helpers live in :mod:`engine.cli.output` (``print_json`` for ``--json`` output, ``safe_text``
the terminal sanitiser, ``SafeStream`` / ``sanitised_output``) and :mod:`engine.cli.console`
(``progress_bar``, ``sigint_cancels``). Command modules import them from there. Each option is declared
where its command is declared (``gallery ... --server`` in :mod:`engine.cli.gallery`, ``search
--server-gallery`` in :mod:`engine.cli.search`); no module edits another's parser.

The edge: an engine error, an ``OSError`` or a ``sqlite3.DatabaseError`` that reaches here becomes one
line on stderr and exit code 1; its traceback goes to the log file (``paths.log_dir()``), never to the
terminal. Everything a command writes to stdout and stderr passes through one sanitiser
(:func:`safe_text`): a control character that came from a database or a file (a case title, an audit
entry, a gallery name) is shown escaped, never executed by the terminal. The Hugging Face hub is put offline with telemetry off (unless the user already chose) for
every command except ``models download``, so no library phones home on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import logging.handlers
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from engine import paths
from engine.cli.output import SafeStream, print_json, safe_text, sanitised_output
from engine.errors import Cancelled, EngineError
from engine.logfile import rotating_log
from engine.models.fetch import hub_offline as set_offline

__all__ = ["SafeStream", "build_parser", "main", "print_json", "safe_text", "sanitised_output"]

LOG_NAME = "sketchface-cli.log"
_trace = logging.getLogger("sketchface.cli.trace")  # file only: tracebacks never reach the terminal
_trace.propagate = False

# Modules that add sub-commands. Missing ones are skipped so a partial install still runs.
_COMMAND_MODULES = (
    "engine.cli.models",
    "engine.cli.gallery",
    "engine.cli.search",
    "engine.cli.cases",
    "engine.cli.examiner",
    "engine.cli.sketch",
    "engine.cli.generate",
    "engine.cli.demo",
    "engine.cli.validate",
    "engine.cli.server",
    "engine.cli.doctor",
    "engine.cli.lineup",
    "engine.cli.watch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchface",
        description="SketchFace Workstation: search photo galleries by face sketch or photo. "
        "Run with no arguments to open the desktop app.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def hub_offline(argv: Sequence[str]) -> None:
    """No silent hub traffic: offline and no telemetry unless this command is ``models download``."""
    set_offline(download=[a for a in argv if not a.startswith("-")][:2] == ["models", "download"])


def _log_file() -> Path | None:
    """Attach the rotating log file (once); None where the log folder cannot be written."""
    try:
        path = paths.log_dir() / LOG_NAME
    except OSError:  # the log folder cannot even be created (read-only or full disk)
        return None
    for handler in _trace.handlers:
        if getattr(handler, "baseFilename", None) == str(path):
            return None if getattr(handler, "failed", False) else path
    for handler in list(_trace.handlers):
        _trace.removeHandler(handler)
        handler.close()
    handler = rotating_log(path, 2_000_000, 3)  # fails quietly, once, when the disk is full or read-only
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    _trace.addHandler(handler)
    _trace.setLevel(logging.DEBUG)
    return path


def _one_line(exc: BaseException) -> str:
    """A person's view of an OS or database error: what failed and on which file, without a traceback."""
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        where = ", ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{what}: {where}" if where else what
    if isinstance(exc, sqlite3.DatabaseError):
        return f"a database could not be used ({exc}); if it is damaged, restore it from a backup"
    return str(exc)


def _fail(exc: BaseException, text: str, argv: Sequence[str]) -> int:
    """Print one line, log the traceback to the file; exit code 1."""
    log = _log_file()
    if log is not None:
        _trace.error("sketchface %s: %s", " ".join(argv), text, exc_info=exc)
    print(f"error: {text}" + (f" (details in {log})" if log is not None and not isinstance(exc, EngineError)
                              else ""), file=sys.stderr)
    return 1


def _closed_pipe(exc: BaseException) -> bool:
    """Whether a closed output pipe is among the causes of ``exc``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BrokenPipeError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reader_gone() -> int:
    """The reader went away (``sketchface ... | head``): not an error of ours, so exit 0.

    stdout is pointed at devnull so the interpreter's final flush does not raise again.
    """
    with contextlib.suppress(OSError, ValueError):  # stdout without a descriptor (a test's capture)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``sketchface`` command; its exit status. All its terminal output is sanitised."""
    with sanitised_output():
        return _main(argv)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    hub_offline(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
        return code
    except Cancelled:
        print("Cancelled.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except EngineError as exc:
        if _closed_pipe(exc):  # a command that words its own OSErrors met the closed pipe first
            return _reader_gone()
        return _fail(exc, str(exc), argv)
    except (OSError, sqlite3.DatabaseError) as exc:
        return _fail(exc, _one_line(exc), argv)


if __name__ == "__main__":
    sys.exit(main())
