"""``sketchface gallery ...``: create, fill, inspect and check galleries from the command line.

Progress goes to stderr (tqdm, silent when stderr is not a terminal), results to stdout (text, or
one JSON document with ``--json``). Ctrl-C cancels an import cleanly: what was recorded stays.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli import server, watch
from engine.cli.console import progress_bar, sigint_cancels
from engine.cli.output import plain_value, print_json
from engine.gallery import create_gallery, delete_gallery, list_galleries, open_gallery
from engine.gallery.compact import parse_index_kind


def _open(ref: str) -> Any:
    return open_gallery(ref)


def _create(args: argparse.Namespace) -> int:
    if args.server:
        return int(server.gallery_create(args))
    kind = parse_index_kind(args.index)  # checked before anything is created
    with create_gallery(args.name) as g:
        if kind != g.index_kind:
            g.rebuild(kind=kind)
        info = g.info()
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"Created gallery '{info.name}' (id {info.id}). Add photos: sketchface gallery add {info.id} FOLDER")
    return 0


def _add(args: argparse.Namespace) -> int:
    if args.server:
        return int(server.gallery_add(args))
    with _open(args.gallery) as g, sigint_cancels() as token, progress_bar(f"Importing into {g.name}") as bar:
        g.write_lock.timeout = args.wait  # another process importing: wait this long, then refuse
        report = g.add([Path(p) for p in args.paths], progress=bar, cancel=token, workers=args.workers,
                       batch=args.batch)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"{report.scanned} file(s) scanned in {report.elapsed_s:.1f} s: {report.added} added, "
          f"{report.updated} updated, {report.unchanged} unchanged, {report.no_face} without a face, "
          f"{report.errors} unreadable, {report.skipped} skipped (not regular files); "
          f"{report.faces} face(s) indexed.")
    if report.bad:
        print(f"\nNot indexed ({len(report.bad)}):")
        for bad in report.bad:
            print(f"  {bad.path}: {bad.reason}")
    if report.suspect:
        print(f"\nSuspect, indexed but failing their format's integrity check; check any match on them against "
              f"the original ({len(report.suspect)}):")
        for bad in report.suspect:
            print(f"  {bad.path}: {bad.reason}")
    if report.failed:
        print(f"\nFailed, will be retried next time ({len(report.failed)}):")
        for bad in report.failed:
            print(f"  {bad.path}: {bad.reason}")
    return 1 if report.failed else 0


def _list(args: argparse.Namespace) -> int:
    if args.server:
        return int(server.gallery_list(args))

    infos = list_galleries()
    if args.json:
        print_json([i.to_dict() for i in infos])
        return 0
    if not infos:
        print("No galleries yet. Create one: sketchface gallery create NAME")
    for i in infos:
        print(f"{i.id}  {i.name:<30} {i.photos:>8} photos {i.faces:>8} faces  v{i.content_version}")
    return 0


def _info(args: argparse.Namespace) -> int:
    if args.server:
        return int(server.gallery_info(args))
    with _open(args.gallery) as g:
        info = g.info()
        bad = g.bad_photos() if args.bad else []
        suspect = g.store.suspect_photos() if args.bad else []
    if args.json:
        doc = info.to_dict()
        if args.bad:
            doc["bad"] = [{"path": p, "status": s, "reason": r} for p, s, r in bad]
            doc["suspect"] = [{"path": p, "reason": r} for p, r in suspect]
        print_json(doc)
        return 0
    for key, value in info.to_dict().items():
        if key not in ("hint", "recall_warning"):
            print(f"{key:>16}: {plain_value(value)}")
    if info.recall_warning:
        print(f"Warning: {info.recall_warning}")
    if info.hint:
        print(f"Hint: {info.hint}")
    for p, _s, r in bad:
        print(f"  {p}: {r}")
    for p, r in suspect:
        print(f"  {p}: suspect (indexed): {r}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with _open(args.gallery) as g:
        report = g.remove(args.paths)
    if args.json:
        print_json({"photos": report.photos, "faces": report.faces})
    else:
        print(f"Removed {report.photos} photo(s) and {report.faces} face(s).")
    return 0 if report.photos else 1


def _rebuild(args: argparse.Namespace) -> int:
    with _open(args.gallery) as g, sigint_cancels() as token, progress_bar("Rebuilding", unit="face") as bar:
        g.rebuild(progress=bar, cancel=token, M=args.m, ef_construction=args.ef_construction, kind=args.index)
        info = g.info()
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"Rebuilt the {info.index_kind} index of '{info.name}': {info.faces} face(s), {info.index}.")
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _open(args.gallery) as g:
        report = g.verify(sample=args.sample)
    if args.json:
        print_json(report.to_dict())
    elif report.ok:
        print(f"OK: {report.store_faces} stored face(s), {report.index_live} in the index, "
              f"{report.sample_checked} vectors compared.")
    else:
        print("NOT CONSISTENT:\n  " + "\n  ".join(report.problems)
              + "\nRun 'sketchface gallery rebuild' to rebuild the index from the stored embeddings.")
    return 0 if report.ok else 1


def _import_metadata(args: argparse.Namespace) -> int:
    with _open(args.gallery) as g:
        report = g.import_metadata(args.csv, skip_bad=args.skip_bad)
    if args.json:
        print_json({"rows": report.rows, "imported": report.imported,
                    "errors": [{"row": n, "reason": r} for n, r in report.errors]})
        return 0
    print(f"Imported metadata for {report.imported} of {report.rows} row(s).")
    for n, why in report.errors:
        print(f"  skipped row {n}: {why}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        print("Deleting removes the gallery's index, embeddings and metadata (never the photos). "
              "Repeat with --yes to confirm.", file=sys.stderr)
        return 2
    gid = delete_gallery(args.gallery)
    print(f"Deleted gallery {gid}.")
    return 0


def register(subparsers: Any) -> None:
    """Add ``gallery`` and its actions to the ``sketchface`` parser."""
    p = subparsers.add_parser("gallery", help="create, fill and check photo galleries")
    acts = p.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)

    def action(name: str, func: Any, help_: str, gallery: bool = True) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_, description=help_)
        if gallery:
            a.add_argument("gallery", help="gallery name or id")
        a.add_argument("--json", action="store_true", help="print one JSON document for scripts")
        a.set_defaults(func=func)
        return a

    a = action("create", _create, "create an empty gallery", gallery=False)
    a.add_argument("name")
    a.add_argument("--index", default="hnsw", metavar="KIND",
                   help="hnsw (float32, fastest; default) or compact (int8 + exact re-rank, about 1 KB a face)")
    a.add_argument("--server", metavar="PROFILE", help="a gallery on this server profile")
    a.add_argument("--unit", help="unit owning a server gallery (default: the profile's)")
    a = action("add", _add, "import photos from folders (recursively) or files; re-running resumes")
    a.add_argument("paths", nargs="+", help="folders or image files")
    a.add_argument("--workers", type=int, default=None, help="decoding threads (settings: ingest_workers)")
    a.add_argument("--batch", type=int, default=None, help="faces per embedding batch (settings: ingest_batch)")
    a.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                   help="when another process is changing the gallery, wait this long for it (default 600)")
    a.add_argument("--server", metavar="PROFILE", help="a gallery on this server profile")
    a = action("list", _list, "list galleries", gallery=False)
    a.add_argument("--server", metavar="PROFILE", help="a gallery on this server profile")
    a = action("info", _info, "show a gallery's counts, model digest and index parameters")
    a.add_argument("--bad", action="store_true", help="also list files that are not indexed, with reasons")
    a.add_argument("--server", metavar="PROFILE", help="a gallery on this server profile")
    a = action("remove", _remove, "remove photos (files, or everything under a folder) from a gallery")
    a.add_argument("paths", nargs="+")
    a = action("rebuild", _rebuild, "rebuild the vector index from the stored embeddings")
    a.add_argument("--m", type=int, default=None, help="new HNSW M (default: keep)")
    a.add_argument("--ef-construction", type=int, default=None, help="new HNSW ef_construction (default: keep)")
    a.add_argument("--index", default=None, metavar="KIND", help="switch the index kind: hnsw or compact (default: keep)")
    a = action("verify", _verify, "check that the index and the store agree (exit 1 if not)")
    a.add_argument("--sample", type=int, default=256, help="stored vectors to compare with the index")
    a = action("import-metadata", _import_metadata, "attach per-photo metadata from a CSV file")
    a.add_argument("csv", type=Path)
    a.add_argument("--skip-bad", action="store_true", help="import the good rows even if some are bad")
    a = action("delete", _delete, "delete a gallery (never the photos)")
    a.add_argument("--yes", action="store_true", help="confirm")
    a = acts.add_parser("push", help="copy a local gallery to a server (no re-embedding; resumable)")
    a.add_argument("local", help="local gallery name or id")
    a.add_argument("--server", metavar="PROFILE", required=True)
    a.add_argument("--to", help="server gallery name (default: the local name; created if missing)")
    a.add_argument("--unit", help="unit owning the server gallery if it is created")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=server.gallery_push)
    watch.register_retain(acts)
