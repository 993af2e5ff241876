"""``sketchface models status | verify [ID] | import PATH | download ID``: manage the models headless.

Output for people goes to stdout, progress bars to stderr (so ``--json`` output stays parseable).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from engine.cli.output import print_json
from engine.errors import EngineError
from engine.models import get_spec, model_dir, store
from engine.models.bundle import import_bundle_report
from engine.models.fetch import download
from engine.models.store import pins, verify
from engine.progress import ProgressEvent
from engine.sketch.checkpoint import load_config


class _Bar:
    """Adapts engine progress events to a tqdm byte counter on stderr (hidden when stderr is not a terminal)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __call__(self, event: ProgressEvent) -> None:
        total = event.total or None
        if self._bar is None or event.done < self._done or total != self._bar.total:
            self.close()
            self._bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                             disable=None, leave=False, dynamic_ncols=True)
        self._bar.set_description_str(event.message[-40:], refresh=False)
        self._bar.update(event.done - self._bar.n)
        self._done = event.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._done = 0


def _encoder_origin(row: Any) -> dict[str, Any]:
    """For an installed sketch encoder: the pretrained weights it was trained from (its config.json)."""
    if row.task != "sketch-encoder" or not row.installed:
        return {}
    try:
        return {"pretrained": load_config(model_dir(row.id)).pretrained or {"source": "not recorded"}}
    except EngineError:
        return {}


def _pins_warning(book: Any) -> str:
    """The finding printed when the pin file's signature does not verify."""
    return (f"Model pins NOT AUTHENTIC: {book.path} {book.problem}. A model file could have been replaced "
            "together with its pin: files that only a pin vouches for are refused at load. Move the pin file "
            "away and re-import those models from a trusted copy to pin them again.")


def _status(args: argparse.Namespace) -> int:
    rows = store.status(deep=args.deep)  # looked up on the module at call time (tests replace it)
    if args.json:
        print_json([{**row.to_dict(), **_encoder_origin(row)} for row in rows])
        return 0
    book = pins()
    if not book.authentic:
        print(_pins_warning(book) + "\n")
    width = max(len(r.id) for r in rows)
    print(f"{'MODEL':<{width}}  {'TASK':<15} {'INSTALLED':<9}  DIGEST")
    for r in rows:
        extra = f"  (missing: {', '.join(r.missing)})" if r.missing and r.verified != "not installed" else ""
        print(f"{r.id:<{width}}  {r.task:<15} {'yes' if r.installed else 'no':<9}  {_TRUST_TEXT.get(r.verified, r.verified)}"
              f"{extra}")
        origin = _encoder_origin(r).get("pretrained")
        if origin:
            print(f"{'':<{width}}    trained from: {origin.get('source')}"
                  + (f", sha256 {origin['sha256']}" if origin.get("sha256") else "")
                  + (f"  WARNING: {origin['warning']}" if origin.get("warning") else ""))
        mixed = {f.trust for f in r.files}
        if args.files or len(mixed) > 1:
            for f in r.files:
                print(f"{'':<{width}}    {f.path}: {_TRUST_TEXT.get(f.trust, f.trust)}"
                      f"{'' if f.state == 'ok' else f' ({f.state})'}")
    print("\npublished: the file matches the SHA-256 its publisher states (in the model manifest).\n"
          "pinned at first import: compared only with the digest the file had when it was first imported "
          "(trust on first use); it proves the file has not changed since, not that it is the publisher's file.")
    missing = [r for r in rows if not r.installed]
    if missing:
        print("\nTo install a missing model:")
        for r in missing:
            print(f"  {r.id} (needed for {', '.join(r.required_for) or 'optional features'}):")
            print(f"    {r.hint}")
    if any(r.verified == "mismatch" for r in rows):
        print("\nA file differs from its expected digest: run 'sketchface models verify' for details.")
    return 0


_TRUST_TEXT = {"pinned at first import": "pinned at first import", "published": "published",
               "pins not authentic": "PINS NOT AUTHENTIC", "pin not authentic": "PIN NOT AUTHENTIC",
               "unchecked": "digest not checked yet (run with --deep)", "not pinned": "not pinned (no known digest)",
               "mismatch": "MISMATCH"}


def _verify(args: argparse.Namespace) -> int:
    bar = _Bar()
    try:
        results = verify(args.model_id, progress=bar)
    finally:
        bar.close()
    book = pins()
    failed = (any(r.state in ("mismatch", "pins not authentic") for r in results)
              or bool(args.model_id and not results[0].ok) or not book.authentic)
    if args.json:
        print_json({"ok": not failed, "pins": {"path": str(book.path), "authentic": book.authentic,
                                               "problem": book.problem},
                    "models": [r.to_dict() for r in results]})
        return 1 if failed else 0
    if not book.authentic:
        print(_pins_warning(book))
    absent = [r.model_id for r in results if not r.present]
    for r in results:
        if not r.present and not args.model_id:
            continue
        print(f"{r.model_id}: {r.state.upper() if r.state in ('mismatch', 'pins not authentic') else r.state}")
        for f in r.files:
            if f.state == "ok":
                what = ("the digest its publisher states" if f.expected_from == "manifest"
                        else "the digest pinned at first import (not a published digest)")
                print(f"  ok        {f.path}  sha256 {f.actual} (matches {what})")
            elif f.state == "mismatch":
                print(f"  MISMATCH  {f.path}\n            expected {f.expected} ({f.expected_from})\n"
                      f"            actual   {f.actual}")
            elif f.state == "pin not authentic":
                print(f"  UNTRUSTED {f.path}  sha256 {f.actual} (only a pin vouches for it, and the pins are not "
                      "authentic)")
            elif f.state == "unpinned":
                print(f"  unpinned  {f.path}  sha256 {f.actual} (no known digest: import it to pin one)")
            elif not f.optional:
                print(f"  missing   {f.path}")
    if absent and not args.model_id:
        print(f"not installed: {', '.join(absent)}")
    if failed and not book.authentic:
        print("Verification FAILED: the model pins were changed without this workstation's key, so no pinned "
              "file can be vouched for. Do not use these models for casework; re-import them from a trusted "
              "copy.", file=sys.stderr)
    elif failed:
        print("Verification FAILED: a model file is not the one installed or published. Do not use it for "
              "casework; re-import it from a trusted copy.", file=sys.stderr)
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    bar = _Bar()
    try:
        report = import_bundle_report(args.path, progress=bar, replace=args.replace)
    finally:
        bar.close()
    if args.json:
        print_json(report.to_dict())
        return 0
    print("Installed:")
    for f in report.files:
        print(f"  {f.model_id}/{f.file}  sha256 {f.sha256}")
    for model_id, missing in report.incomplete.items():
        print(f"Incomplete: {model_id} still lacks {', '.join(missing)}; it cannot be used until "
              f"{'that file is' if len(missing) == 1 else 'those files are'} imported.")
    if report.not_installed:
        print("Not installed:")
        for name, why in report.not_installed:
            print(f"  {name}: {why}")
    return 0


def _download(args: argparse.Namespace) -> int:
    spec = get_spec(args.model_id)
    print(f"{spec.title}\nLicence: {spec.licence}", file=sys.stderr)
    bar = _Bar()
    try:
        files = download(args.model_id, progress=bar, base_url=args.mirror, retries=args.retries,
                         replace=args.replace)
    finally:
        bar.close()
    if args.json:
        print_json({"model": args.model_id, "downloaded": files})
    elif files:
        print(f"Downloaded {args.model_id}: {', '.join(files)}")
    else:
        print(f"{args.model_id} is already installed and matches its known digests.")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``models`` command and its actions to the ``sketchface`` parser."""
    parser = subparsers.add_parser(
        "models", help="list, verify, import and download the models",
        description="Models are installed under the models folder (SKETCHFACE_HOME moves it). Nothing is "
                    "downloaded unless you run 'models download'.")
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    p = sub.add_parser("status", help="which models are installed, and what to do about missing ones")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--deep", action="store_true", help="hash files whose digest is not cached yet")
    p.add_argument("--files", action="store_true", help="list every file with where its digest comes from")
    p.set_defaults(func=_status)

    p = sub.add_parser("verify", help="check the SHA-256 of every installed model file")
    p.add_argument("model_id", nargs="?", metavar="ID", help="one model (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_verify)

    p = sub.add_parser("import", help="install models from a folder, a .zip or a single file (offline bundle)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--replace", action="store_true",
                   help="replace files whose pinned digest differs (e.g. a newly trained sketch encoder)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_import)

    p = sub.add_parser("download", help="download a model (needs internet or an internal mirror)")
    p.add_argument("model_id", metavar="ID")
    p.add_argument("--mirror", metavar="URL",
                   help="internal mirror replacing the source's scheme and host (env SKETCHFACE_MODEL_MIRROR)")
    p.add_argument("--retries", type=int, default=3, help="resuming retries after a network error")
    p.add_argument("--replace", action="store_true", help="accept a file whose pinned digest differs")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_download)
