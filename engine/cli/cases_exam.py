"""``sketchface case intake | examine | conclude``: the reasoned examination from the command line.

Each command's ``--help`` lists what it accepts (sources, components, the scales' levels), so a
script writer needs no other reference.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from engine.cases import exam_checks, exam_report, examination, scales
from engine.errors import CaseError


def _face(ref: str) -> tuple[str, int]:
    gallery, _, face = ref.rpartition(":")
    if not face.isdigit():
        raise CaseError(f"FACE must be a face id or GALLERY:FACE_ID (gallery name or id), not {ref!r}.")
    return gallery, int(face)


def show_data(case: Any) -> dict[str, Any]:
    """The examination part of ``case show``: intakes (with the marks the witness described, and the
    non-evidential label of a generated probe) and the searches that ran before their probe's intake."""
    intakes = [{**i.to_dict(), "label": "" if i.evidential else examination.NON_EVIDENTIAL}
               for i in examination.list_intakes(case)]
    return {"intakes": intakes, "searched_before_intake": exam_report.searched_before_intake(case)}


def show_lines(data: dict[str, Any]) -> list[str]:
    """``case show``'s lines for :func:`show_data`: each intake, its marks, then what was searched before intake."""
    lines = []
    for i in data["intakes"]:
        lines.append(f"  intake {i['id']} of {i['probe_ref']}: {i['source']}, {i['suitability']}"
                     f"{' (' + i['reasons'] + ')' if i['reasons'] else ''}{'  [' + i['label'] + ']' if i['label'] else ''}")
        lines += [f"    {m['kind']}: {m['location']}{' — ' + m['description'] if m['description'] else ''}"
                  for m in i["marks"]]
    lines += [f"  {b['text']}" for b in data["searched_before_intake"]]
    return lines


def _levels_help() -> str:
    try:
        loaded = scales.load_scales()
    except CaseError as exc:
        return f"The conclusion scale file cannot be read: {exc}"
    lines = []
    for s in loaded:
        lines.append(f"{s.title} (scale {s.id}; for {', '.join(s.probe_types)} probes):")
        lines += [f"  {lv.id:<28} {lv.text}" for lv in s.levels]
    return "\n".join(lines) + "\nA sketch search yields leads, not identifications: for sketch and generated probes only " \
                              "investigative-lead outcomes can be recorded."


def register(add: Callable[..., argparse.ArgumentParser], open_case: Callable[[str], Any],
             gallery_of: Callable[[Any, int, str], str]) -> None:
    """Add the three commands with the ``case`` parser's own ``add`` helper, case opener and gallery resolver."""

    def intake(args: argparse.Namespace) -> int:
        marks = [examination.parse_mark(m) for m in args.mark or []]
        with open_case(args.case) as case:
            i = examination.record_intake(case, args.sketch, source=args.source, suitability=args.suitability,
                                          reasons="; ".join(args.reason or []), software=args.software or "",
                                          witness=args.witness or "", delay=args.delay or "", artist=args.artist or "",
                                          alterations=args.alterations or "", marks=marks, user=args.user)
        flag = "" if i.evidential else f"  [{examination.NON_EVIDENTIAL}]"
        print(f"Recorded intake {i.id} of {i.probe_ref}: {i.source}, {i.suitability}"
              f"{' (' + i.reasons + ')' if i.reasons else ''}; conclusions held to the {i.probe_type} scale.{flag}")
        return 0

    def examine(args: argparse.Namespace) -> int:
        features = [examination.parse_feature(f) for f in args.feature]
        notes = dict(n.split("=", 1) for n in args.note or [] if "=" in n)
        gallery, face = _face(args.face)
        with open_case(args.case) as case:
            gid = gallery_of(case, args.search, gallery) if gallery else None
            rows = examination.record_sheet(case, args.search, face, features, gallery_id=gid, notes=notes,
                                            user=args.user)
        print(f"Comparison sheet of search {args.search}, face {rows[0].gallery_id}:{face} "
              f"({len(rows)} of {len(examination.COMPONENTS)} components assessed):")
        for r in rows:
            why = f" ({r.reason})" if r.reason else ""
            print(f"  {r.title:<24} {r.assessment}{why}{'  — ' + r.note if r.note else ''}")
        return 0

    def conclude(args: argparse.Namespace) -> int:
        gallery, face = _face(args.face)
        with open_case(args.case) as case:
            gid = gallery_of(case, args.search, gallery) if gallery else None
            c = examination.record_conclusion(case, args.search, face, args.level, gallery_id=gid, note=args.note,
                                              user=args.user)
        print(f"Conclusion on search {args.search}, face {c.gallery_id}:{c.face_id} ({c.probe_type} probe, scale "
              f"{c.scale_id}): {c.level_text}.")
        return 0

    raw = argparse.RawDescriptionHelpFormatter
    sp = add("intake", intake, "record a probe's intake (source, witness, suitability) before it is searched")
    sp.formatter_class = raw
    sp.epilog = ("Sources: " + ", ".join(exam_checks.SOURCES) + ". A generated image (generated:ID) is always "
                 f"recorded as generated and marked {examination.NON_EVIDENTIAL!r}.\nSuitability: "
                 + ", ".join(examination.SUITABILITY) + " (limited and unsuitable need --reason).")
    sp.add_argument("sketch", metavar="SKETCH", help="sketch id (latest version), sketch:N:vM, sketch_version:ID or "
                                                     "generated:ID")
    sp.add_argument("--source", required=True, choices=exam_checks.SOURCES)
    sp.add_argument("--software", help="the composite software (for --source composite-software)")
    sp.add_argument("--witness", help="the witness (default: the sketch's witness)")
    sp.add_argument("--delay", help="time between the event and the description, e.g. '3 days'")
    sp.add_argument("--artist", help="who drew or composed it")
    sp.add_argument("--alterations", help="known alterations of the image")
    sp.add_argument("--suitability", required=True, choices=examination.SUITABILITY)
    sp.add_argument("--reason", action="append", help="a reason for the suitability (repeatable)")
    sp.add_argument("--mark", action="append", metavar="KIND:LOCATION[:DESCRIPTION]",
                    help="a scar, mark or tattoo the witness described (repeatable)")

    sp = add("examine", examine, "record comparison-sheet rows (FISWG components) for one candidate")
    sp.formatter_class = raw
    sp.epilog = (f"Components ({examination.FISWG_VERSION}):\n"
                 + "\n".join(f"  {k:<18} {v}" for k, v in examination.COMPONENTS.items())
                 + "\nAssessments: " + ", ".join(examination.ASSESSMENTS)
                 + " (not-assessable needs why: COMPONENT=not-assessable:\"hidden by hair\").")
    sp.add_argument("search", type=int)
    sp.add_argument("face", metavar="GALLERY:FACE", help="face id, or GALLERY:FACE_ID with the gallery's name or id")
    sp.add_argument("--feature", action="append", required=True, metavar="COMPONENT=ASSESSMENT[:WHY]")
    sp.add_argument("--note", action="append", metavar="COMPONENT=TEXT", help="a note on one component (repeatable)")

    sp = add("conclude", conclude, "record a conclusion on a candidate, on the scale its probe type allows")
    sp.formatter_class = raw
    sp.epilog = "Levels:\n" + _levels_help()
    sp.add_argument("search", type=int)
    sp.add_argument("face", metavar="GALLERY:FACE", help="face id, or GALLERY:FACE_ID with the gallery's name or id")
    sp.add_argument("--level", required=True, help="a level id of the scale (listed below)")
    sp.add_argument("--note", default="")
