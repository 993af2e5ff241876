"""``sketchface lineup build | swap | material | record | list``: fair photo line-ups from the command line.

A front-end over :mod:`engine.workstation.lineup`: it parses, calls the use case and prints. The key
(which position holds the suspect) is never printed by ``build``, ``swap`` or ``material``, so output
copied into the administration file cannot unblind it; ``list --key`` shows it to the examiner.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cases import Case, open_case
from engine.cases import lineup as lineup_records
from engine.cases.lineup import Lineup
from engine.cli.output import print_json
from engine.errors import CaseError
from engine.fsutil import atomic_write_bytes
from engine.workstation import Workstation
from engine.workstation.lineup import (
    DEFAULT_FILLERS,
    DEFAULT_MATCH,
    LineupRules,
    build_lineup,
    lineup_material,
    record_response,
    swap_filler,
)


def _face(ref: str) -> tuple[str, int]:
    gallery, _, face = ref.rpartition(":")
    if not gallery or not face.isdigit():
        raise CaseError(f"Name the candidate as GALLERY:FACE (gallery name or id, face id), not {ref!r}.")
    return gallery, int(face)


def _description(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CaseError(f"A description value is FIELD=VALUE (e.g. sex=M, age_band=30-39), not {item!r}.")
        out[key.strip()] = value.strip()
    return out


def _band(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        band = (float(lo), float(hi))
    except ValueError:
        band = (1.0, 0.0)
    if not sep or not -1.0 <= band[0] < band[1] <= 1.0:
        raise CaseError(f"The band is LO:HI with -1 <= LO < HI <= 1 (cosine to the suspect), not {text!r}.")
    return band


def _summary(lu: Lineup) -> dict[str, Any]:
    """What build and swap print: everything but the key."""
    f = lu.fairness
    return {"lineup": lu.id, "search": lu.search_id, "photos": len(lu.members), "mode": lu.mode, "seed": str(lu.seed),
            "description": lu.description, "band": lu.params["band"], "band_source": lu.params["band_source"],
            "distinctiveness_ratio": f["distinctiveness"]["ratio"],
            "mock_witness_suspect_share": f["mock_witness"]["suspect_share"],
            "effective_size": round(f["mock_witness"]["effective_size"], 2), "warning": lu.warning,
            "swaps": len(lu.swaps), "witness": _witness_label(lu)}


def _witness_label(lu: Lineup) -> str:
    w = lu.params.get("witness")
    return f"{w['id']} · {w['reference']} (taken {w['taken_on']})" if w else ""


def _print(lu: Lineup, as_json: bool) -> None:
    s = _summary(lu)
    if as_json:
        print_json(s)
        return
    desc = ", ".join(f"{k}={v}" for k, v in s["description"].items()) or "none"
    print(f"Line-up {s['lineup']} of search {s['search']}: {s['photos']} photos ({s['mode']}), seed {s['seed']}.")
    print(f"  description fitted: {desc}" + (f" (witness record {s['witness']})" if s["witness"] else ""))
    print(f"  similarity band [{s['band'][0]:.3f}, {s['band'][1]:.3f}] ({s['band_source']})")
    ratio = "undefined" if s["distinctiveness_ratio"] is None else f"{s['distinctiveness_ratio']:.2f}"
    print(f"  fairness: R = {ratio}; mock witnesses pick the suspect "
          f"{100 * s['mock_witness_suspect_share']:.0f} % (fair {100 / s['photos']:.0f} %); E' {s['effective_size']}")
    if s["warning"]:
        print(f"  WARNING: {s['warning']}")
    print("  The key (the suspect's position) is sealed in the case; see 'sketchface lineup list CASE --key'.")


def _write_pdf(ws: Workstation, case: Case, lineup_id: int, out: str, mode: str | None) -> Path:
    path = Path(out)
    atomic_write_bytes(path, lineup_material(ws, case, lineup_id, mode=mode))
    print(f"Administration material written to {path} (no mark of the suspect).")
    return path


def _build(args: argparse.Namespace) -> int:
    rules = LineupRules(fillers=args.fillers, match=tuple(m.strip() for m in args.match.split(",") if m.strip()),
                        description=_description(args.describe or []), band=_band(args.band), mode=args.mode,
                        galleries=tuple(g.strip() for g in (args.galleries or "").split(",") if g.strip()),
                        seed=args.seed, witness=args.witness)
    gallery, face = _face(args.candidate)
    with Workstation() as ws, open_case(args.case) as case:
        lu = build_lineup(ws, case, args.search, ws.gallery(gallery).id, face, rules)
        _print(lu, args.json)
        if args.out:
            _write_pdf(ws, case, lu.id, args.out, None)
    return 0


def _swap(args: argparse.Namespace) -> int:
    replacement = None
    with Workstation() as ws, open_case(args.case) as case:
        if args.replacement:
            gallery, face = _face(args.replacement)
            replacement = (ws.gallery(gallery).id, face)
        _print(swap_filler(ws, case, args.lineup, args.position, args.reason, replacement=replacement), args.json)
    return 0


def _material(args: argparse.Namespace) -> int:
    with Workstation() as ws, open_case(args.case) as case:
        _write_pdf(ws, case, args.lineup, args.out, args.mode)
    return 0


def _choice(text: str) -> int | None:
    if text.strip().lower() in ("none", "no", "0", "not-present"):
        return None
    if not text.strip().isdigit():
        raise CaseError(f"--choice is the position the witness chose (1..N) or 'none', not {text!r}.")
    return int(text)


def _record(args: argparse.Namespace) -> int:
    material = Path(args.material).read_bytes() if args.material else None
    with open_case(args.case) as case:
        r = record_response(case, args.lineup, _choice(args.choice), args.confidence,
                            administrator=args.administrator or "", material=material)
    chosen = "nobody chosen" if r.choice is None else f"position {r.choice}"
    print(f"Response {r.id} to line-up {args.lineup} recorded: {chosen}; confidence “{r.confidence}”.")
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_case(args.case) as case:
        rows = lineup_records.list_lineups(case)
        data = [lu.to_dict() if args.key else _summary(lu) for lu in rows]
    if args.json:
        print_json(data)
        return 0
    if not rows:
        print("No line-up in this case.")
    for lu in rows:
        _print(lu, False)
        for r in lu.responses:
            chosen = "nobody" if r.choice is None else f"position {r.choice}"
            print(f"  response {r.id}: {chosen}; “{r.confidence}”" + (f" → {lu.outcome(r)}" if args.key else ""))
        if args.key:
            for m in lu.members:
                print(f"  {m.position}: {m.role.upper():8} {m.gallery_id}:{m.face_id} subject {m.subject_id}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``sketchface lineup …``."""
    p = subparsers.add_parser("lineup", help="build, administer and record fair photo line-ups",
                              description="Fair photo line-ups built from the galleries around a case candidate, "
                                          "recorded in the case (the key sealed there).")
    sub = p.add_subparsers(dest="lineup_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="build a line-up around a candidate of a recorded search")
    b.add_argument("case", help="case id, number or folder")
    b.add_argument("search", type=int, help="the recorded search the candidate came from")
    b.add_argument("candidate", metavar="GALLERY:FACE", help="the candidate (gallery name or id, face id)")
    b.add_argument("--fillers", type=int, default=DEFAULT_FILLERS, help="fillers besides the suspect (default 5)")
    b.add_argument("--match", default=",".join(DEFAULT_MATCH),
                   help="description fields fillers must fit, comma-separated (default sex,age_band; '' for none)")
    b.add_argument("--witness", metavar="W", help="take the description from this witness record of the case "
                                                  "(its id or reference; see 'sketchface case witnesses CASE')")
    b.add_argument("--describe", action="append", metavar="FIELD=VALUE",
                   help="a value of a ticked field typed here (overrides the witness record; without one, the "
                        "default is the suspect's recorded value)")
    b.add_argument("--band", metavar="LO:HI", help="cosine band to the suspect (default: 50th–99th percentile of "
                                                   "the non-mate scores)")
    b.add_argument("--galleries", help="local galleries to draw fillers from, comma-separated (default: the "
                                       "candidate's)")
    b.add_argument("--seed", type=int, help="random seed (default: drawn and recorded)")
    b.add_argument("--mode", choices=lineup_records.MODES, default="simultaneous")
    b.add_argument("--out", metavar="FILE.pdf", help="also write the administration material")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_build)
    s = sub.add_parser("swap", help="replace a filler, recording why")
    s.add_argument("case")
    s.add_argument("lineup", type=int)
    s.add_argument("position", type=int)
    s.add_argument("--reason", required=True)
    s.add_argument("--with", dest="replacement", metavar="GALLERY:FACE", help="the face to use (default: drawn)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_swap)
    m = sub.add_parser("material", help="write the administration PDF (instructions, photos, response form)")
    m.add_argument("case")
    m.add_argument("lineup", type=int)
    m.add_argument("--out", required=True, metavar="FILE.pdf")
    m.add_argument("--mode", choices=lineup_records.MODES, help="default: the line-up's own")
    m.set_defaults(func=_material)
    r = sub.add_parser("record", help="record the witness's choice and confidence statement")
    r.add_argument("case")
    r.add_argument("lineup", type=int)
    r.add_argument("--choice", required=True, metavar="N|none")
    r.add_argument("--confidence", required=True, help="the witness's words, taken at once")
    r.add_argument("--administrator", help="who showed the line-up")
    r.add_argument("--material", metavar="FILE.pdf", help="the PDF shown (its SHA-256 is recorded)")
    r.set_defaults(func=_record)
    ls = sub.add_parser("list", help="the case's line-ups")
    ls.add_argument("case")
    ls.add_argument("--key", action="store_true", help="also show the sealed key and outcomes (examiner only)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
