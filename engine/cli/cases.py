"""``sketchface case ...``: create, inspect, verify, re-run, review, sign off, report, export and import cases.

Exit status: 0 success; 1 error; 3 when ``verify`` finds tampering or ``rerun`` finds a changed list,
so scripts can act on the outcome without parsing text.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import examiners, workstation_key
from engine.cases import (
    add_attachment,
    add_generated_image,
    add_sketch,
    candidates,
    create_case,
    export_case,
    export_report,
    get_search,
    import_case,
    list_cases,
    list_generated,
    list_searches,
    list_signoffs,
    list_sketches,
    load_engine_rerunner,
    open_case,
    peer_review,
    record_decision,
    registry,
    rerun_search,
    review,
    sign_off,
    update_case,
)
from engine.cases.integrity import describe_signature
from engine.cases.resign import resign
from engine.cli import cases_exam, witness
from engine.cli.examiner import ensure_examiner
from engine.cli.output import print_json
from engine.errors import CaseError
from engine.generate.provenance import read_record

EXIT_CHANGED = 3
_opened: list[Path] = []  # case databases this command opened, named when one turns out damaged


def _open(ref: str) -> Any:
    case = open_case(ref)
    _opened.append(case.folder / "case.sqlite")
    return case


def _read_input(path: str, what: str) -> bytes:
    """The bytes of a file the user named, or one clear CaseError (missing, a folder, unreadable)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise CaseError(f"{p} is a folder; give the {what} file itself.")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise CaseError(f"There is no {what} file at {p}.", hint="Check the path and try again.") from None
    except OSError as exc:
        raise CaseError(f"The {what} file {p} cannot be read ({exc.strerror or exc}).") from None


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a damaged case database or a file-system error into one line, and show registry notices."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        _opened.clear()
        if getattr(args, "writes_case", False):  # who is working is settled before any work is done

            ensure_examiner(args)
        try:
            return func(args)
        except sqlite3.DatabaseError as exc:
            where = _opened[-1] if _opened else "of this case"
            raise CaseError(f"The case database {where} is damaged ({exc}); nothing was changed.",
                            hint="Restore the case from its latest export ('sketchface case import ARCHIVE') or "
                                 "from a backup of its folder.") from exc
        except OSError as exc:
            raise CaseError(f"{exc.filename or 'A file'}: {exc.strerror or exc}.") from exc
        finally:
            for notice in registry.take_notices():
                print(f"warning: {notice}", file=sys.stderr)

    return run


def _cmd_new(args: argparse.Namespace) -> int:
    with create_case(args.number, args.title, examiner=args.examiner, witnesses=args.witness or [],
                     incident_date=args.incident_date, notes=args.notes, location=args.location,
                     user=args.user) as case:
        info = case.info
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"Created case {info.case_number} ({info.case_id}) in {info.folder}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    rows = list_cases()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No cases yet. Create one with 'sketchface case new NUMBER --title TITLE'.")
    for r in rows:
        where = "" if r["available"] else "  [folder not available]"
        if r.get("swapped"):
            where = f"  [its folder holds another case, {r['swapped']}: swapped?]"
        print(f"{r['case_number']:<16} {r['case_id']:<28} {r.get('status', '?'):<8} {r['title']}{where}")
    return 0


def _file_name(path: str) -> str:
    """The file name of a recorded photo path (Windows or POSIX separators alike)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1] or "—"


def _show_search(case: Any, search_id: int, as_json: bool) -> int:
    rec = get_search(case, search_id)
    rows = candidates(case, search_id)
    if as_json:
        print_json({"search": rec.to_dict(), "candidates": [c.to_dict() for c in rows]})
        return 0
    names = {str(g.get("id")): str(g.get("name") or g.get("id")) for g in rec.manifest.get("galleries", [])
             if isinstance(g, dict)}
    hidden = bool(rows and rows[0].hidden)
    mode = "blind, scores hidden" if hidden else ("blind, revealed" if rec.blind else "open")
    print(f"Search {rec.id} {rec.label!r} ({mode}), {rec.n_results} candidates, run {rec.created_at}")
    for q in rec.queries:
        print(f"  query {q.idx + 1 if isinstance(q.idx, int) else q.idx}: {q.kind} ×{q.weight}  {q.path}")
    cells = [("Pos." if hidden else "Rank", "Score", "Gallery", "Face", "Photo file", "Decision", "Note")]
    for c in rows:
        rank = f"#{c.position}" if c.hidden else str(c.rank)
        score = "—" if c.score is None else f"{c.score:.4f}"
        gallery = c.gallery_name or names.get(c.gallery_id, c.gallery_id)
        cells.append((rank, score, gallery, str(c.face_id), _file_name(c.photo_path), c.decision, c.note))
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]) - 1)]
    for r in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])
    if rows:
        print(f"  Decide with: sketchface case decide {case.info.case_number} {rec.id} GALLERY:FACE --decision ...")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        if args.search is not None:
            return _show_search(case, args.search, args.json)
        info = case.info
        data = {"case": info.to_dict(), "sketches": [s.to_dict() for s in list_sketches(case)],
                "searches": [{"id": s.id, "label": s.label, "created_at": s.created_at, "n_results": s.n_results,
                              "blind": s.blind, "rerun_of": s.rerun_of} for s in list_searches(case)],
                "generated_images": [g.to_dict() for g in list_generated(case)],
                "signoffs": [s.to_dict() for s in list_signoffs(case)],
                "examination": cases_exam.show_data(case)}
        if args.json:
            print_json(data)
            return 0
        print(f"Case {info.case_number}: {info.title}  [{info.status}]  ({info.case_id})")
        print(f"  examiner {info.examiner}; witnesses {', '.join(info.witnesses) or '—'}; opened {info.created_at}")
        for s in data["sketches"]:
            print(f"  sketch {s['sketch_id']} v{s['version']} ({s['witness']}) {s['sha256'][:16]}…")
        for s in data["searches"]:
            extra = f" re-run of {s['rerun_of']}" if s["rerun_of"] else ""
            print(f"  search {s['id']}: {s['label'] or '(no label)'} — {s['n_results']} candidates"
                  f"{' (blind)' if s['blind'] else ''}{extra}")
        print(f"  {len(data['generated_images'])} generated image(s), {len(data['signoffs'])} sign-off(s)")
        for line in cases_exam.show_lines(data["examination"]):
            print(line)
    return 0


def _parse_head(text: str | None) -> tuple[int | None, str] | None:
    if not text:
        return None
    count, sep, head = text.strip().rpartition(":")
    if (sep and not count.isdigit()) or len(head) != 64 or any(c not in "0123456789abcdefABCDEF" for c in head):
        raise CaseError("--head takes the head hash (64 hex digits), or COUNT:HASH, as printed on a report or by "
                        "'case verify'.")
    return (int(count) if sep else None), head.lower()


def _checked_case(case: Any) -> dict[str, Any]:
    """Which case a verification looked at: number, id and folder (None where the database cannot say)."""
    try:
        number: str | None = case.info.case_number
    except (CaseError, sqlite3.Error, ValueError, TypeError):
        number = None
    return {"case_number": number, "case_id": case.case_id, "folder": str(case.folder),
            "write_protected": bool(case.read_only)}


def _cmd_verify(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        report = case.verify(_parse_head(args.head))
        checked = _checked_case(case)
        before_intake = cases_exam.show_data(case)["searched_before_intake"]  # listed, not a finding
    if args.json:
        print_json({**report.to_dict(), "case": checked, "searched_before_intake": before_intake})
    else:
        print(f"Case {checked['case_number'] or '(number unreadable)'} ({checked['case_id']}) in {checked['folder']}"
              + ("  [write-protected: opened read-only]" if checked["write_protected"] else ""))
        print(report.summary())
        for f in report.findings:
            print(f"  - {f.message}")
        print(f"  anchors checked: {', '.join(report.anchors_checked) or 'none'}")
        print(f"  head signature: {describe_signature(report.signature)}")
        _print_examiners(report.examiners)
        for b in before_intake:
            print(f"  note: {b['text']}")
        if report.ok:
            print(f"  head for later checks: {report.count}:{report.head}")
    return 0 if report.ok else EXIT_CHANGED


def _print_examiners(signed: dict[str, Any] | None) -> None:
    """The examiner signatures' part of ``case verify``: counts, each key's label, and plain notes."""
    if not signed:
        return
    print(f"  examiner signatures: {signed.get('signed', 0)} entries signed and checked")
    for k in signed.get("keys", []):
        print(f"    {k.get('label')}: {k.get('name')} ({k.get('identifier')}), key {k.get('fingerprint')} — "
              f"{k.get('entries')} entr{'y' if k.get('entries') == 1 else 'ies'}; {k.get('note')}")
    for note in signed.get("notes", []):
        print(f"  note: {note}")


def _cmd_rerun(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        get_search(case, args.search)  # say "no such search" before loading the search engine's models
        report = rerun_search(case, args.search, load_engine_rerunner(), store=not args.no_store, user=args.user)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.summary())
        if report.identical and report.changes:
            print("\n".join(f"  - {c}" for c in report.changes))
        if report.new_search_id:
            print(f"  stored as search {report.new_search_id}")
    return 0 if report.identical else EXIT_CHANGED


def _cmd_report(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        path = export_report(case, args.format, args.out, top_n=args.top, user=args.user)
    print(path)
    return 0


def _archive_path(out: str, case_number: str) -> Path:
    """``--out`` as a file, or as a folder that gets ``case_NUMBER.zip``, the name the window offers: an
    existing folder, a path ending in a separator, or a new path without a file suffix (``--out export``
    makes the folder ``export``, not an archive named ``export`` that nothing would open as a zip)."""
    target = Path(out).expanduser()
    if target.is_dir() or out.endswith((os.sep, "/")) or (not target.exists() and not target.suffix):
        return target / f"case_{re.sub(r'[^A-Za-z0-9_.-]+', '-', case_number)}.zip"
    return target


def _cmd_export(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        res = export_case(case, _archive_path(args.out, case.info.case_number), allow_broken=args.allow_broken,
                          user=args.user, overwrite=args.overwrite)
    if args.json:
        print_json({"path": str(res.path), "sha256": res.sha256, "files": res.files,
                    "audit_count": res.audit_count, "audit_head": res.audit_head})
    else:
        print(f"Exported {res.files} files to {res.path}\n  SHA-256 {res.sha256}\n"
              f"  give the receiver this hash: sketchface case import {res.path.name} --expect-sha256 {res.sha256}")
        if not res.recorded:
            print("  the case is read-only (it does not verify, or its folder is write-protected), so this export "
                  "was not recorded in its audit log; the archive's manifest says it was not verified")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    with import_case(args.archive, location=args.location, expected_sha256=args.expect_sha256,
                     expected_key=args.expect_key, user=args.user) as case:
        info = case.info
        signed = case.audit_entries()[-1].details.get("archive_signature") or {}
    print(f"Imported case {info.case_number} ({info.case_id}) into {info.folder}")
    who = "this workstation" if signed.get("this_workstation") else "ANOTHER workstation"
    print(f"  the archive's audit head was signed by {who}, key {signed.get('fingerprint')}")
    if not signed.get("this_workstation") and not args.expect_key:
        print("  compare that key with the sender's ('sketchface case key' on their workstation), or import with "
              "--expect-key")
    return 0


def _cmd_key(args: argparse.Namespace) -> int:
    if args.new:
        pub = workstation_key.replace_key(args.reason or "")
        print(f"Made a new workstation key, fingerprint {workstation_key.key_fingerprint(pub)}.\n"
              "  cases signed by the old key now verify as signed by ANOTHER workstation and are read-only here;\n"
              f"  the change is recorded in {workstation_key.history_file()}")
        return 0
    pub = workstation_key.public_key_hex()
    if args.json:
        print_json({"public_key": pub, "fingerprint": workstation_key.key_fingerprint(pub)})
    else:
        print(f"Workstation key fingerprint {workstation_key.key_fingerprint(pub)}\n  public key {pub}\n"
              "  give the fingerprint to whoever receives your case archives (import --expect-key)")
    return 0


def _gallery_of(case: Any, search_id: int, ref: str) -> str:
    """The gallery id a ``GALLERY:FACE`` reference names in a search: by id, or by name when only one
    gallery of the search has that name (an ambiguous name is refused)."""
    rec = get_search(case, search_id)
    galleries = {str(g.get("id")): str(g.get("name") or "") for g in rec.manifest.get("galleries", [])
                 if isinstance(g, dict)}
    if ref in galleries:
        return ref
    named = [gid for gid, name in galleries.items() if name.casefold() == ref.strip().casefold()]
    listed = ", ".join(f"{name or '(no name)'} ({gid})" for gid, name in galleries.items()) or "none"
    if len(named) > 1:
        raise CaseError(f"Search {search_id} searched several galleries called '{ref}'; say which by id.",
                        hint=f"Its galleries: {listed}.")
    if not named:
        raise CaseError(f"Search {search_id} did not search a gallery called '{ref}'.",
                        hint=f"Its galleries: {listed}.")
    return named[0]


def _cmd_decide(args: argparse.Namespace) -> int:
    gallery, _, face = args.face.rpartition(":")
    if not face.isdigit():
        raise CaseError(f"FACE must be a face id or GALLERY:FACE_ID (gallery name or id), not {args.face!r}.")
    with _open(args.case) as case:
        gallery_id = _gallery_of(case, args.search, gallery) if gallery else None
        c = record_decision(case, args.search, int(face), args.decision, gallery_id=gallery_id,
                            note=args.note, user=args.user)
    print(f"Search {args.search}, face {c.gallery_id}:{c.face_id}: {c.decision} "
          f"(gallery {c.gallery_name or c.gallery_id}, photo {_file_name(c.photo_path)})")
    return 0


def _cmd_signoff(args: argparse.Namespace) -> int:
    scopes: list[int | None] = list(args.search) if args.search else [None]  # the window's "which searches"
    if args.examiner and not args.examiner_profile:  # a name that is a profile of this workstation selects it
        with contextlib.suppress(CaseError):  # not a profile: sign_off refuses a name other than the acting one's
            examiners.act_as(examiners.find(args.examiner).fingerprint)
    with _open(args.case) as case:
        for sid in scopes:
            so = sign_off(case, args.examiner, role=args.role, statement=args.statement, search_id=sid,
                          scope=args.scope or "")
            what = f"search {sid}" if sid is not None else "the case"
            key = examiners.require_current().fingerprint
            print(f"Signed off {what} by {so.examiner} (key {key}) over audit entries 1–{so.audit_count} "
                  f"(head {so.audit_head}).")
    return 0


def _blind_items(case: Any, search_id: int, refs: list[str]) -> list[dict[str, Any]]:
    out = []
    for ref in refs:
        face, sep, decision = ref.rpartition("=")
        gallery, _, fid = face.rpartition(":")
        if not sep or not fid.isdigit():
            raise CaseError(f"--decide takes FACE=possible|excluded (FACE: face id or GALLERY:FACE_ID), not {ref!r}.")
        out.append({"face_id": int(fid), "decision": decision,
                    "gallery_id": _gallery_of(case, search_id, gallery) if gallery else None})
    return out


def _cmd_review_blind(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        if not args.decide:
            rows = review.blind_candidates(case, args.search)
            if args.json:
                print_json({"search_id": args.search, "candidates": rows})
            for r in [] if args.json else rows:
                print(f"  {r['position']:>4}  face {r['gallery_id']}:{r['face_id']}  {_file_name(r['photo_path'])}")
            return 0
        done = review.record_blind_review(case, args.search, _blind_items(case, args.search, args.decide),
                                          user=args.user)
    print(f"Recorded {len(done)} blind review decision(s) on search {args.search} under your own key; the "
          "sign-off lists where they differ from the first examiner's.")
    return 0


def _cmd_review_file(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        data = peer_review.make_review_file(case, statement=args.statement or "", scope=args.scope or "",
                                            role=args.role, search_id=args.search)
    out = peer_review.write_review_file(data, Path(args.out).expanduser())
    print(f"Wrote the review file {out}, signed by {data['reviewer']['name']} ({data['reviewer']['identifier']}), "
          f"key {data['reviewer']['fingerprint']}; it covers audit head {data['audit_count']}:{data['audit_head']}, "
          f"{len(data['decisions_reviewed'])} decision(s), {len(data['disagreements'])} disagreement(s).\n"
          f"  return it to the case's examiner: sketchface case review-import {data['case_id']} {out.name}")
    return 0


def _cmd_review_import(args: argparse.Namespace) -> int:
    data = peer_review.read_review_file(Path(args.file).expanduser())
    with _open(args.case) as case:
        so, label, note = peer_review.import_review(case, data, user=args.user)
    reviewer = data["reviewer"]
    print(f"Recorded the sign-off of {so.examiner} ({reviewer.get('identifier')}), key {reviewer.get('fingerprint')} "
          f"[{label.upper() if label != 'known examiner' else label}: {note}], over audit entries "
          f"1–{so.audit_count}.")
    if label != "known examiner":
        print("  compare the key with the reviewer's ('sketchface examiner export-key' on their workstation), then "
              "'sketchface examiner trust accept KEYFILE'")
    return 0


def _cmd_resign(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        done = resign(case, reason=args.reason or "", user=args.user)
    by = done["by"] or {}
    print(f"Re-signed {done['resigned']} entr{'y' if done['resigned'] == 1 else 'ies'} (#{done['first']}–"
          f"#{done['last']}) as {by.get('name')} ({by.get('identifier')}), key {by.get('fingerprint')}, at "
          f"{done['at']}; recorded as entry #{done['entry']}.")
    return 0


def _cmd_add_generated(args: argparse.Namespace) -> int:
    """Store a reconstruction/variation PNG with the parameters its provenance record carries (the window's
    "Save to case"), linked to the stored sketch version it was made from when that sketch is in the case."""
    data = _read_input(args.file, "generated image")
    try:
        rec = read_record(data)
    except (OSError, ValueError) as exc:
        raise CaseError(f"{args.file} is not a readable PNG ({exc}).") from exc
    if rec is None:
        raise CaseError(f"{args.file} carries no SketchFace provenance record; only images written by "
                        "'sketchface reconstruct' or 'sketchface vary' can be stored as generated images.")
    params = {"kind": rec.get("kind"), "label": rec.get("label"), "synthetic": True, "seed": rec.get("seed"),
              "identity_score": rec.get("identity_score"), "parameters": rec.get("parameters", {}),
              "models": rec.get("models", {}), "sources": rec.get("sources", {}),
              "software": rec.get("software", "")}
    sketch_sha = (rec.get("sources") or {}).get("sketch_sha256")
    with _open(args.case) as case:
        parent = next((v for v in reversed(list_sketches(case)) if v.sha256 == sketch_sha), None) if sketch_sha else None
        g = add_generated_image(case, data, params, parent=parent, note=args.note, user=args.user)
    linked = f", made from sketch {parent.sketch_id} v{parent.version}" if parent is not None else ""
    print(f"Stored generated image {g.id} ({g.sha256}){linked}; reports stamp it SYNTHETIC.")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    """The audit log, as the window's audit panel lists it (newest last), with the chain's status."""
    with _open(args.case) as case:
        entries = case.audit_entries()
        report = case.verify()
    shown = entries[-args.last:] if args.last else entries
    if args.json:
        print_json({"ok": report.ok, "count": report.count, "head": report.head,
                    "entries": [e.to_dict() for e in shown]})
        return 0 if report.ok else EXIT_CHANGED
    for e in shown:
        print(f"{e.seq:>5}  {e.ts}  {e.user:<16} {e.action:<18} {e.object}")
    print(report.summary())
    return 0 if report.ok else EXIT_CHANGED


def _cmd_update(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        info = update_case(case, title=args.title, status=args.status, notes=args.notes,
                           witnesses=args.witness, incident_date=args.incident_date, user=args.user)
    print(f"Case {info.case_number}: {info.title}  [{info.status}]")
    return 0


def _cmd_add_sketch(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        v = add_sketch(case, _read_input(args.file, "sketch"), witness=args.witness or "", name=args.name,
                       sketch_id=args.sketch, note=args.note, user=args.user)
    print(f"Stored sketch {v.sketch_id} version {v.version} ({v.sha256})")
    return 0


def _cmd_attach(args: argparse.Namespace) -> int:
    with _open(args.case) as case:
        a = add_attachment(case, _read_input(args.file, "attachment"), Path(args.file).name, note=args.note,
                           user=args.user)
    print(f"Attached {a.name} ({a.sha256})")
    return 0


def register(subparsers: Any) -> None:
    """Add ``sketchface case ...`` to the main command line."""
    p = subparsers.add_parser("case", help="cases: audit log, searches, decisions, reports, export/import")
    sub = p.add_subparsers(dest="case_command", metavar="ACTION", required=True)

    def add(name: str, func: Any, help_: str, *, case: bool = True, json_: bool = False,
            user: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        if case:
            sp.add_argument("case", metavar="CASE", help="case id, case number, or case folder")
        if json_:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        if user:
            sp.add_argument("--user", help="the name shown in the audit log (default: the examiner profile's)")
            sp.add_argument("--examiner-profile", help="act as this examiner profile (name, identifier or key "
                            "fingerprint; default: the current one, or SKETCHFACE_EXAMINER_PROFILE)")
        sp.set_defaults(func=_guarded(func), writes_case=user)
        return sp

    sp = add("new", _cmd_new, "create a case", case=False, json_=True)
    sp.add_argument("number", help="case number")
    sp.add_argument("--title", required=True)
    sp.add_argument("--examiner")
    sp.add_argument("--witness", action="append", help="witness name or code (repeatable)")
    sp.add_argument("--incident-date", default="")
    sp.add_argument("--notes", default="")
    sp.add_argument("--location", help="parent folder for the case (e.g. an encrypted volume)")
    add("list", _cmd_list, "list cases", case=False, json_=True, user=False)
    sp = add("show", _cmd_show, "show a case, or one search's candidates", json_=True, user=False)
    sp.add_argument("--search", type=int, help="show this search's candidates")
    sp = add("verify", _cmd_verify, "verify the audit chain (exit 3 if tampered)", json_=True, user=False)
    sp.add_argument("--head", "--expect-head", dest="head",
                    help="the head hash (or COUNT:HASH) printed on a report or by an earlier verify")
    sp = add("rerun", _cmd_rerun, "re-run a stored search and compare (exit 3 if the list changed)", json_=True)
    sp.add_argument("search", type=int)
    sp.add_argument("--no-store", action="store_true", help="do not keep the re-run in the case")
    sp = add("report", _cmd_report, "write a case report")
    sp.add_argument("--format", choices=("pdf", "html", "json"), default="pdf")
    sp.add_argument("--out", help="output file (default: the case's reports/ folder)")
    sp.add_argument("--top", type=int, help="candidates per search (default: all)")
    sp = add("export", _cmd_export, "export the case as one archive", json_=True)
    sp.add_argument("--out", required=True, help="archive file (NAME.zip), or a folder to write case_NUMBER.zip "
                    "into (an existing one, or a new path without a suffix)")
    sp.add_argument("--allow-broken", action="store_true", help="export even if the audit chain is broken")
    sp.add_argument("--overwrite", action="store_true", help="replace the archive if it already exists "
                    "(refused otherwise: an archive already handed over with its SHA-256 would be lost)")
    sp = add("import", _cmd_import, "import a case archive", case=False)
    sp.add_argument("archive")
    sp.add_argument("--location", help="parent folder for the case")
    sp.add_argument("--expect-sha256", help="the archive's SHA-256 as reported by the sender")
    sp.add_argument("--expect-key", help="the sender's workstation key fingerprint ('sketchface case key')")
    sp = add("key", _cmd_key, "show this workstation's case-signing key (public half)", case=False, json_=True,
             user=False)
    sp.add_argument("--new", action="store_true",
                    help="make a new key where the old one is lost (refused while a key is present; recorded)")
    sp.add_argument("--reason", help="why the key is replaced, kept in the key history (with --new)")
    sp = add("decide", _cmd_decide, "record a decision on a candidate")
    sp.add_argument("search", type=int)
    sp.add_argument("face", help="face id, or GALLERY:FACE_ID with the gallery's name or id")
    sp.add_argument("--decision", required=True, choices=("possible", "excluded", "not_reviewed"))
    sp.add_argument("--note", default="")
    sp = add("signoff", _cmd_signoff, "record the acting examiner profile's second-examiner sign-off")
    sp.add_argument("--examiner", help="the signing examiner's name, checked against the acting profile")
    sp.add_argument("--role", default="second examiner")
    sp.add_argument("--statement", default="")
    sp.add_argument("--scope", help="what was reviewed, required while candidates are undecided "
                    "(e.g. 'reviewed the 2 decided candidates only'); the report prints it")
    sp.add_argument("--search", type=int, action="append",
                    help="sign off this search only (repeatable: one sign-off per search; default: the whole case)")
    sp = add("review-blind", _cmd_review_blind, "blind verification: list a search's candidates without the first "
             "examiner's decisions, or record your own (--decide)", json_=True)
    sp.add_argument("search", type=int)
    sp.add_argument("--decide", action="append", help="FACE=possible|excluded (repeatable)")
    sp = add("review-file", _cmd_review_file, "write a signed review file of this (imported) copy to send back")
    sp.add_argument("--out", required=True)
    sp.add_argument("--statement", help="what you found, in your own words")
    sp.add_argument("--scope", help="what was reviewed, required while candidates are undecided")
    sp.add_argument("--role", default="second examiner")
    sp.add_argument("--search", type=int, help="review this search only (default: the whole case)")
    sp = add("review-import", _cmd_review_import, "record a returned review file as a sign-off, after checking it")
    sp.add_argument("file")
    sp = add("resign", _cmd_resign, "re-sign the entries written before examiner profiles, under your profile")
    sp.add_argument("--reason")
    sp = add("add-generated", _cmd_add_generated, "store a generated image (from 'reconstruct' or 'vary') in the case")
    sp.add_argument("file")
    sp.add_argument("--note", default="")
    sp = add("audit", _cmd_audit, "list the audit log and verify its chain (exit 3 if tampered)", json_=True,
             user=False)
    sp.add_argument("--last", type=int, help="only the last N entries")
    sp = add("update", _cmd_update, "change the case's title, status, notes, witnesses or incident date")
    sp.add_argument("--title")
    sp.add_argument("--status", choices=("open", "closed", "archived"))
    sp.add_argument("--notes")
    sp.add_argument("--witness", action="append", help="the full list of witnesses (repeatable)")
    sp.add_argument("--incident-date")
    sp = add("add-sketch", _cmd_add_sketch, "store a sketch image (new sketch or new version)")
    sp.add_argument("file")
    sp.add_argument("--witness")
    sp.add_argument("--name", default="")
    sp.add_argument("--sketch", type=int, help="add a version to this sketch")
    sp.add_argument("--note", default="")
    sp = add("attach", _cmd_attach, "attach a file to the case")
    sp.add_argument("file")
    sp.add_argument("--note", default="")
    cases_exam.register(add, _open, _gallery_of)
    witness.register(add, _open)
