"""``sketchface search``: query one or several galleries with photos and/or sketches from the command line.

With ``--case`` the search is recorded in the case exactly as the window records it (run manifest,
query images, ranked list and candidate thumbnails, one audited entry), so a headless examiner can go
search -> ``case decide`` -> ``case signoff`` -> ``case report``. A ``--blind`` search prints no ranked
list: scores stay hidden until every candidate is decided (``sketchface case show CASE --search N``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli import print_json
from engine.errors import GalleryError


class _QueryAction(argparse.Action):
    """Collects ``--photo F`` and ``--sketch F`` in command-line order, as [kind, path, face box]."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, "queries", None) or [])
        items.append([self.const, str(values), None])
        namespace.queries = items


class _FaceBoxAction(argparse.Action):
    """``--face-box X1,Y1,X2,Y2`` sets the face guide of the ``--sketch`` just before it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = getattr(namespace, "queries", None) or []
        if not items or items[-1][0] != "sketch":
            parser.error("--face-box follows the --sketch it belongs to")
        try:
            box = tuple(float(v) for v in str(values).split(","))
        except ValueError:
            parser.error(f"--face-box takes X1,Y1,X2,Y2 in the sketch's pixels, not {values!r}")
        if len(box) != 4:
            parser.error(f"--face-box takes four numbers X1,Y1,X2,Y2, not {values!r}")
        items[-1][2] = box


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


def queries_from_args(args: argparse.Namespace) -> list[Any]:
    """The queries of a ``search`` command line (weights, face boxes), after checking ``--case`` exists.

    Shared with the mixed local + server search, so both read the command line the same way.
    """
    from engine.search import Query

    if not args.queries:
        raise GalleryError("Give at least one query: --photo FILE or --sketch FILE.")
    if (args.blind or args.label) and not args.case:
        raise GalleryError("--blind and --label describe a search recorded in a case: add --case CASE.")
    if args.case:  # fail on an unknown case before any model loads
        from engine.cases import open_case

        with open_case(args.case) as case:  # and on a case that would refuse the record (tampered, read-only)
            case.check_writable()
    weights = _weights(args.weights, len(args.queries))
    return [Query.from_path(Path(p), kind, w, face_box=box)
            for (kind, p, box), w in zip(args.queries, weights, strict=True)]


def record_in_case(args: argparse.Namespace, queries: list[Any], galleries: list[Any], result: Any) -> Any:
    """Store the search in ``--case`` with its query images and candidate thumbnails; the stored record."""
    from engine.cases import open_case
    from engine.search.record import record_search

    kinds = " + ".join(sorted({q.kind for q in queries}))
    label = args.label or f"{kinds.capitalize()} search (command line)"
    with open_case(args.case) as case:
        return record_search(case, result, queries, galleries, label=label, blind=args.blind, user=args.user)


def _search(args: argparse.Namespace) -> int:
    from engine.gallery import open_gallery
    from engine.search import search

    queries = queries_from_args(args)
    galleries = [open_gallery(g) for g in args.gallery]
    try:
        result = search(queries, galleries, k=args.top, filters=args.filter or [],
                        group_by_subject=args.group_by_subject, ef=args.ef)
        record = record_in_case(args, queries, galleries, result) if args.case else None
    finally:
        for g in galleries:
            g.close()
    return report_search(args, result, record)


def report_search(args: argparse.Namespace, result: Any, record: Any) -> int:
    """Print a search (JSON or lines); a blind search recorded in a case prints no ranking."""
    if record is not None and args.blind:
        out = {"case": args.case, "search_id": record.id, "blind": True, "n_results": record.n_results}
        if args.json:
            print_json(out)
        else:
            print(f"Recorded blind search {record.id} in case {args.case}: {record.n_results} candidates, "
                  f"scores hidden until each is decided.\n  Review: sketchface case show {args.case} "
                  f"--search {record.id}")
        return 0
    if args.json:
        doc = result.to_dict()
        if record is not None:
            doc["case"], doc["search_id"] = args.case, record.id
        print_json(doc)
        return 0
    if record is not None:
        print(f"Recorded as search {record.id} in case {args.case} ({record.n_results} candidates).")
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
    p.add_argument("--face-box", action=_FaceBoxAction, metavar="X1,Y1,X2,Y2",
                   help="the face guide of the preceding --sketch, in its pixels (default: the drawing's ink)")
    p.add_argument("--weights", help="fusion weights, one per query image in order, e.g. 1,0.5")
    p.add_argument("--top", "-k", type=int, default=None, help="number of results (settings: search_top_k)")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="metadata filter: key=v, key!=v, key>=v, key<=v, key>v, key<v (repeatable, all must hold)")
    p.add_argument("--group-by-subject", action="store_true", help="one row per subject id")
    p.add_argument("--ef", type=int, default=None, help="HNSW query beam width (settings: hnsw_ef)")
    p.add_argument("--json", action="store_true", help="print matches and the run manifest as JSON")
    p.add_argument("--case", help="record the search in this case (id, number or folder)")
    p.add_argument("--label", default="", help="a short name for the recorded search")
    p.add_argument("--blind", action="store_true",
                   help="record for blind review: candidates shuffled, scores hidden until all are decided")
    p.add_argument("--user", help="who is searching (default: settings examiner, else OS user)")
    p.set_defaults(func=_search, queries=None)
