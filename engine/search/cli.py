"""``sketchface search``: query one or several galleries with photos and/or sketches from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli import print_json
from engine.errors import GalleryError


class _QueryAction(argparse.Action):
    """Collects ``--photo F`` and ``--sketch F`` in command-line order, as (kind, path)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, "queries", None) or [])
        items.append((self.const, str(values)))
        namespace.queries = items


def _weights(text: str | None, n: int) -> list[float]:
    if not text:
        return [1.0] * n
    try:
        weights = [float(x) for x in text.split(",")]
    except ValueError:
        raise GalleryError(f"--weights {text!r}: give numbers separated by commas (e.g. 1,0.5).") from None
    if len(weights) != n:
        raise GalleryError(f"--weights has {len(weights)} value(s) for {n} query image(s).")
    return weights


def _search(args: argparse.Namespace) -> int:
    from engine.search import Query, search

    if not args.queries:
        raise GalleryError("Give at least one query: --photo FILE or --sketch FILE.")
    weights = _weights(args.weights, len(args.queries))
    queries = [Query.from_path(Path(p), kind, w) for (kind, p), w in zip(args.queries, weights, strict=True)]
    result = search(queries, args.gallery, k=args.top, filters=args.filter or [],
                    group_by_subject=args.group_by_subject, ef=args.ef)
    if args.json:
        print_json(result.to_dict())
        return 0
    for note in result.notes:
        print(f"NOTE: {note}", file=sys.stderr)
    if not result.matches:
        print("No match (empty galleries, or nothing passes the filters).")
    for m in result.matches:
        subject = f" subject={m.subject_id}" if m.subject_id else ""
        group = f" ({m.group_size} photos)" if args.group_by_subject and m.group_size > 1 else ""
        print(f"{m.rank:>4}  {m.score:.4f}  [{m.gallery_name}]{subject}{group}  {m.photo_path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``search`` to the ``sketchface`` parser."""
    p = subparsers.add_parser(
        "search", help="search galleries by photo or sketch",
        description="Search one or several galleries. Several query images are fused (weighted mean of "
                    "their embeddings). Without a trained sketch encoder, sketches are embedded by ArcFace "
                    "itself and results are labelled as a baseline.")
    p.add_argument("--gallery", "-g", action="append", required=True, help="gallery name or id (repeatable)")
    p.add_argument("--photo", action=_QueryAction, const="photo", dest="queries", metavar="FILE",
                   help="query photo (repeatable)")
    p.add_argument("--sketch", action=_QueryAction, const="sketch", dest="queries", metavar="FILE",
                   help="query sketch (repeatable)")
    p.add_argument("--weights", help="fusion weights, one per query image in order, e.g. 1,0.5")
    p.add_argument("--top", "-k", type=int, default=None, help="number of results (settings: search_top_k)")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="metadata filter: key=v, key!=v, key>=v, key<=v, key>v, key<v (repeatable, all must hold)")
    p.add_argument("--group-by-subject", action="store_true", help="one row per subject id")
    p.add_argument("--ef", type=int, default=None, help="HNSW query beam width (settings: hnsw_ef)")
    p.add_argument("--json", action="store_true", help="print matches and the run manifest as JSON")
    p.set_defaults(func=_search, queries=None)
