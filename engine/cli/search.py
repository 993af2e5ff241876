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

from engine import policy
from engine.cases import open_case
from engine.cli.examiner import ensure_examiner
from engine.cli.output import print_json
from engine.errors import GalleryError
from engine.gallery.exact import AUTO, EXACT_BUDGET_MS, MODES
from engine.search import Query
from engine.workstation import Workstation, server_key
from engine.workstation.authorize import authorize


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
    """The queries of a ``search`` command line (weights, face boxes), checked against the agency's policy.

    ``--case`` must name a writable case and the examiner is settled, before any model loads. The
    policy is applied by the engine (:func:`engine.workstation.authorize.authorize`); its authorization
    (None without a policy file) is kept on ``args`` for the search and its record.
    """
    if not args.queries:
        raise GalleryError("Give at least one query: --photo FILE or --sketch FILE.")
    if (args.blind or args.label) and not args.case:
        raise GalleryError("--blind and --label describe a search recorded in a case: add --case CASE.")
    weights = _weights(args.weights, len(args.queries))
    queries = [Query.from_path(Path(p), kind, w, face_box=box)
               for (kind, p, box), w in zip(args.queries, weights, strict=True)]
    fields = {f: getattr(args, f, None) for f in policy.FIELDS}
    server = bool(getattr(args, "server_gallery", None))
    if not args.case:
        args.authorization = authorize(fields, k=args.top, server=server, case=None, queries=queries)
        return queries
    ensure_examiner(args)  # who is searching is settled before any model loads
    with open_case(args.case) as case:  # fail on an unknown case, or one that would refuse the record
        case.check_writable()
        args.authorization = authorize(fields, k=args.top, server=server, case=case, queries=queries)
    return queries


def record_in_case(args: argparse.Namespace, workstation: Any, finished: Any) -> Any:
    """Store the search in ``--case`` with its query images and candidate thumbnails; the stored record.

    Under a search policy, its authorization is recorded in the same transaction (by the workstation).
    """
    kinds = " + ".join(sorted({q.kind for q in finished.result.run.query}))
    label = args.label or f"{kinds.capitalize()} search (command line)"
    with open_case(args.case) as case:
        return workstation.record(case, finished, label=label, blind=args.blind, user=args.user,
                                  authorization=getattr(args, "authorization", None))


def gallery_refs(args: argparse.Namespace) -> list[str]:
    """The galleries to search, as the workstation names them (``--server-gallery P:G`` -> ``pg:P:G``)."""
    refs = list(args.gallery or [])
    for item in args.server_gallery or []:
        profile, _, ref = item.partition(":")
        if not profile or not ref:
            raise GalleryError(f"--server-gallery {item!r}: write PROFILE:GALLERY.")
        refs.append(server_key(profile, ref))
    if not refs:
        raise GalleryError("Choose what to search: --gallery NAME and/or --server-gallery PROFILE:NAME.")
    return refs


def _search(args: argparse.Namespace) -> int:
    refs = gallery_refs(args)
    queries = queries_from_args(args)
    with Workstation() as workstation:
        finished = workstation.search(queries, refs, k=args.top, filters=args.filter or [],
                                      group_by_subject=args.group_by_subject, ef=args.ef, mode=args.mode,
                                      authorization=args.authorization)
        record = record_in_case(args, workstation, finished) if args.case else None
    return report_search(args, finished.result, record)


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
    print(f"Search mode: {result.mode}" + (" (every stored face scored)" if result.mode == "exact" else
                                            " (HNSW candidates, re-ranked exactly)"), file=sys.stderr)
    if not result.matches:
        print("No match (empty galleries, or nothing passes the filters).")
    for m in result.matches:
        subject = f" subject={m.subject_id}" if m.subject_id else ""
        group = f" ({m.group_size} photos)" if args.group_by_subject and m.group_size > 1 else ""
        print(f"{m.rank:>4}  {m.score:.4f}  [{m.gallery_name}] face {m.face_id}{subject}{group}  {m.photo_path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``search`` to the ``sketchface`` parser."""
    p = subparsers.add_parser(
        "search", help="search galleries by photo or sketch",
        description="Search one or several galleries. Several query images are fused (weighted mean of "
                    "their embeddings). Without a trained sketch encoder, sketches are embedded by ArcFace "
                    "itself and results are labelled as a baseline.")
    p.add_argument("--gallery", "-g", action="append", help="gallery name or id (repeatable)")
    p.add_argument("--server-gallery", action="append", metavar="PROFILE:GALLERY",
                   help="a gallery on a gallery server; one list merged by exact score with the others (repeatable)")
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
    p.add_argument("--mode", choices=MODES, default=AUTO,
                   help="local galleries: auto (exact while the measured scan stays under "
                        f"{EXACT_BUDGET_MS:.0f} ms, else HNSW), exact, or hnsw with exact re-rank")
    p.add_argument("--json", action="store_true", help="print matches and the run manifest as JSON")
    p.add_argument("--case", help="record the search in this case (id, number or folder)")
    p.add_argument("--label", default="", help="a short name for the recorded search")
    p.add_argument("--blind", action="store_true",
                   help="record for blind review: candidates shuffled, scores hidden until all are decided")
    p.add_argument("--user", help="who is searching (default: settings examiner, else OS user)")
    p.add_argument("--examiner-profile", help="with --case: act as this examiner profile (name, identifier or key "
                   "fingerprint; default: the current one)")
    auth = p.add_argument_group("authorization (required where the agency's search policy file asks for it)")
    auth.add_argument("--purpose", help="why the search is run")
    auth.add_argument("--legal-basis", help="the offence or legal basis")
    auth.add_argument("--requesting-officer", help="who requested the search")
    auth.add_argument("--supervisor-approval", help="the approving supervisor (and reference)")
    p.set_defaults(func=_search, queries=None)
