"""``sketchface watch add | list | remove | run | rerun | ack`` and ``sketchface gallery retain``.

A front-end over :mod:`engine.workstation.watch` and :mod:`engine.gallery.retention`: it parses, calls the use
case and prints. ``watch run`` is meant for a scheduler (cron, a systemd timer, the Windows Task Scheduler:
see the README); it exits 0 when every watch ran or had nothing new, and 3 when a watch was refused (its
models changed) so a scheduler's mail says so.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from engine.cases import list_cases, open_case, watch_records
from engine.cli.output import print_json
from engine.errors import CaseError
from engine.gallery import retention
from engine.workstation import Workstation
from engine.workstation import watch as watch_mod

REFUSED_EXIT = 3


def _add(args: argparse.Namespace) -> int:
    if args.all == (args.search is not None):
        raise CaseError("Say which search to watch: --search N, or --all for every search of the case.")
    with Workstation() as ws, open_case(args.case) as case:
        watches = (watch_mod.watch_all(ws, case, bar=args.bar) if args.all
                   else [watch_mod.add_watch(ws, case, args.search, bar=args.bar)])
        if args.json:
            print_json({"case": case.case_id, "watches": [w.to_dict() for w in watches]})
            return 0
        for w in watches:
            print(f"Watch {w.id}: search {w.search_id} of case {case.info.case_number}, "
                  f"{watch_mod.describe_bar(w.bar)}")
        if not watches:
            print("Every search of the case is already watched.")
    return 0


def _cases(ref: str | None) -> list[str]:
    return [ref] if ref else [c["case_id"] for c in list_cases() if c.get("available")]


def _list(args: argparse.Namespace) -> int:
    out: list[dict[str, Any]] = []
    for ref in _cases(args.case):
        with open_case(ref) as case:
            watches = watch_records.list_watches(case)
            if not watches and not args.case:
                continue
            out.append({"case": case.case_id, "case_number": case.info.case_number,
                        "watches": [w.to_dict() for w in watches],
                        "hits": [h.to_dict() for h in watch_records.list_hits(case)]})
    if args.json:
        print_json({"cases": out})
        return 0
    if not out:
        print("No search is watched.")
    for c in out:
        print(f"Case {c['case_number']} ({c['case']}):")
        for w in c["watches"]:
            waiting = sum(1 for h in c["hits"] if h["watch_id"] == w["id"] and not h["acknowledged_at"])
            print(f"  watch {w['id']}  search {w['search_id']}  {w['status']}"
                  f"{' (' + w['ended_reason'] + ')' if w['ended_reason'] else ''}  {watch_mod.describe_bar(w['bar'])}"
                  f"  unacknowledged hits: {waiting}")
        for h in c["hits"]:
            state = f"acknowledged (search {h['search_id']})" if h["acknowledged_at"] else "NOT ACKNOWLEDGED"
            print(f"  hit {h['id']}  watch {h['watch_id']}  face {h['gallery_id']}:{h['face_id']}  score "
                  f"{h['score']:.3f}  version {h['content_version']}  {h['photo_path']}  {state}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with open_case(args.case) as case:
        w = watch_records.remove_watch(case, args.watch)
        print_json(w.to_dict()) if args.json else print(f"Watch {w.id} of case {case.info.case_number} removed.")
    return 0


def _run(args: argparse.Namespace) -> int:
    with Workstation() as ws:
        report = watch_mod.run_watches(ws, cases=args.case or None)
    if args.json:
        print_json(report.to_dict())
    else:
        if not report.rows:
            print("No open case has a watched search.")
        for r in report.rows:
            print(f"Case {r['case']}, watch {r['watch']} (search {r['search']}): {r['outcome']}, "
                  f"{r.get('faces_searched', 0)} new faces searched, {r.get('hits', 0)} hit(s)"
                  f"{'. ' + r['reason'] if r.get('reason') else ''}")
        print(f"{report.hits} new hit(s) in all; acknowledge them with 'sketchface watch ack CASE HIT' or in the "
              "window.")
    return REFUSED_EXIT if report.refused else 0


def _rerun(args: argparse.Namespace) -> int:
    with Workstation() as ws, open_case(args.case) as case:
        w = watch_mod.rerun_watch(ws, case, args.watch)
        print_json(w.to_dict()) if args.json else print(
            f"Search {w.search_id} is the full re-run, recorded in the case; watch {w.id} follows it now.")
    return 0


def _ack(args: argparse.Namespace) -> int:
    with open_case(args.case) as case:
        hit = watch_records.acknowledge(case, args.hit)
        print_json(hit.to_dict()) if args.json else print(
            f"Hit {hit.id} acknowledged: it is search {hit.search_id} of the case, to examine and decide.")
    return 0


def _retain(args: argparse.Namespace) -> int:
    with Workstation() as ws:
        report = retention.retain(ws.open_any(args.gallery), dry_run=args.dry_run, who=getpass.getuser())
    if args.json:
        print_json(report.to_dict())
        return 0
    verb = "would remove" if args.dry_run else "removed"
    print(f"Gallery {report.gallery_name} ({report.gallery_id}): {verb} {len(report.removals)} photo(s), "
          f"{report.faces} face(s).")
    for r in report.removals:
        print(f"  {r.path}  ({len(r.faces)} face(s))  {r.reason}")
    if not args.dry_run and report.removals:
        print(f"Logged in {report.log}.")
    return 0


def register(subparsers: Any) -> None:
    """Add ``watch`` (``gallery retain`` is declared with ``gallery``, through :func:`register_retain`)."""
    p = subparsers.add_parser("watch", help="watched searches: search again, automatically, over photos added since")
    acts = p.add_subparsers(dest="watch_command", metavar="ACTION", required=True)

    def action(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        a = acts.add_parser(name, help=help_, description=help_)
        a.add_argument("--json", action="store_true", help="print one JSON document for scripts")
        a.set_defaults(func=func)
        return a

    a = action("add", _add, "watch a recorded search of an open case (or all of its searches)")
    a.add_argument("case", help="case id, number or folder")
    a.add_argument("--search", type=int, help="the search's number in the case")
    a.add_argument("--all", action="store_true", help="every search of the case")
    a.add_argument("--bar", help="calibrated[:SHARE] (default where a calibration exists) or rank<=N,score>=S")
    action("list", _list, "list watches and their hits").add_argument("case", nargs="?", help="one case only")
    a = action("remove", _remove, "stop a watch (its runs and hits stay in the case)")
    a.add_argument("case")
    a.add_argument("watch", type=int)
    a = action("run", _run, "run every open case's watches over the photos added since (for a scheduler)")
    a.add_argument("--case", action="append", help="only this case (repeatable)")
    a = action("rerun", _rerun, "a refused watch: re-run its search in full, recorded as a new search, and follow it")
    a.add_argument("case")
    a.add_argument("watch", type=int)
    a = action("ack", _ack, "acknowledge a hit: it becomes a search of the case, to examine and decide")
    a.add_argument("case")
    a.add_argument("hit", type=int)


def register_retain(gallery_actions: Any) -> None:
    """Declare ``gallery retain`` among the ``gallery`` actions (called where ``gallery`` is declared)."""
    help_ = "apply the administrator's retention rules: remove photos from store, index and server, logged"
    r = gallery_actions.add_parser("retain", help=help_, description=help_)
    r.add_argument("gallery", help="gallery name or id, or pg:PROFILE:GALLERY (an administrator's profile)")
    r.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    r.add_argument("--json", action="store_true", help="print one JSON document for scripts")
    r.set_defaults(func=_retain)
