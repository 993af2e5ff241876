"""What the examination records must satisfy beyond matching the audit log: the conclusion ceiling.

Why verification checks it too: the command line refuses a conclusion stronger than the probe type
allows, but a row written into the database directly never passed that check. Each stored
conclusion is judged again against the probe type its search has now (from the query images and
their intakes) and the one it was recorded under, whichever is more restricted. This module reads
the database only (no case store), so :mod:`engine.cases.integrity` can call it.
"""

from __future__ import annotations

import sqlite3

from engine.cases import exam_schema, scales
from engine.errors import CaseError

SOURCES = ("artist-sketch", "composite-software", "witness-drawn", "scan", "photo", "generated")
_SOURCE_TYPE = {"photo": "photo", "generated": "generated"}  # every other source is a drawn or scanned sketch
SYNTHETIC_LABEL = "SYNTHETIC"  # the window's label of a search with a generated face as a query image


def source_probe_type(source: str) -> str:
    """The probe type an intake source means: a photo, a generated image, or (anything drawn or scanned) a sketch."""
    return _SOURCE_TYPE.get(source, "sketch")


def latest_intakes(conn: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    """The latest intake of each probe image, by the image's SHA-256 (a later intake supersedes an earlier one)."""
    if not exam_schema.present(conn, "intakes"):
        return {}
    return {str(r["probe_sha256"]): r for r in conn.execute("SELECT * FROM intakes ORDER BY id").fetchall()}


def search_probe_type(conn: sqlite3.Connection, search_id: int) -> str:
    """The most restricted probe type among a search's query images.

    A query image is generated when it is one of the case's generated images or its intake says so,
    a sketch when it was searched as a sketch or its intake names a drawn or scanned source, else a photo.
    A search the window labelled as a SYNTHETIC probe (a reconstruction or variation searched before it
    was stored in the case) is held to the generated scale too: the label can only restrict, never lift.
    """
    intakes = latest_intakes(conn)
    generated = {str(r[0]) for r in conn.execute("SELECT sha256 FROM generated").fetchall()}
    label = conn.execute("SELECT label FROM searches WHERE id = ?", (search_id,)).fetchone()
    kind = "generated" if label is not None and SYNTHETIC_LABEL in str(label[0]).upper() else "photo"
    rows = conn.execute("SELECT kind, sha256 FROM search_queries WHERE search_id = ?", (search_id,)).fetchall()
    for q_kind, sha in rows:
        t = "sketch" if q_kind == "sketch" else "photo"
        if str(sha) in generated:
            t = "generated"
        intake = intakes.get(str(sha))
        if intake is not None:
            t = scales.stricter(t, source_probe_type(str(intake["source"])))
        kind = scales.stricter(kind, t)
    return kind if rows else "sketch"


def conclusion_findings(conn: sqlite3.Connection) -> list[str]:
    """A message for each stored conclusion its probe type does not allow (empty when all hold)."""
    if not exam_schema.present(conn, "conclusions"):
        return []
    try:
        known = {s.id: s for s in scales.load_scales()}
    except CaseError:
        known = {s.id: s for s in scales.default_scales()}
    defaults = {s.id: s for s in scales.default_scales()}
    out = []
    for r in conn.execute("SELECT * FROM conclusions ORDER BY id").fetchall():
        probe = scales.stricter(str(r["probe_type"]), search_probe_type(conn, int(r["search_id"])))
        scale = known.get(str(r["scale_id"])) or defaults.get(str(r["scale_id"]))
        if scale is None:
            if probe in scales.LEAD_ONLY:
                out.append(f"Conclusion {r['id']} (search {r['search_id']}) is on scale {r['scale_id']!r}, which no "
                           f"scale file defines, for a {probe} probe: only investigative-lead outcomes are allowed.")
            continue
        if not scales.allowed(scale, probe, str(r["level"])):
            ceiling = scales.scale_for(probe, tuple(known.values()))
            out.append(f"Conclusion {r['id']} (search {r['search_id']}) states {r['level']!r}, stronger than a {probe} "
                       f"probe allows: its scale stops at {ceiling.levels[0].text!r} ({ceiling.id}).")
    return out
