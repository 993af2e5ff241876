"""Witness descriptions in the case record: who described the culprit, what they said, when, to whom.

Why in the case: a line-up's fillers must fit the *witness's* description (Wells et al. 2020,
recommendation on filler selection), not the suspect's appearance; choosing fillers from the suspect's
own record makes the suspect the best fit by construction. A description taken from the witness and
stored here, one audited write (:mod:`engine.cases.records` replays it against the row), is what a
line-up names as its source, so verify finds a description changed after the line-up was built.

Fields are free (``field -> value``); the usual ones are :data:`STANDARD_FIELDS`. A field that is also
a gallery metadata key (``sex``, ``age_band``, ``source`` ...) can be ticked for matching when a
line-up is built (:mod:`engine.workstation.lineup`); matching compares values case-insensitively.
A record is never edited: a corrected or later description is a new record, and both stay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from engine.cases import witness_schema
from engine.cases.db import canonical_json, now_iso
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError

STANDARD_FIELDS = ("sex", "age_band", "age_range", "height", "build", "hair")
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
MAX_VALUE = 500


@dataclass(frozen=True)
class WitnessDescription:
    """One stored description: the witness (name or reference), the described fields, when and by whom."""

    id: int
    reference: str
    fields: dict[str, str]
    taken_on: str
    taken_by: str
    created_at: str
    created_by: str

    def label(self) -> str:
        """'2 · W-02 (taken 2026-12-01)': how lists name it."""
        return f"{self.id} · {self.reference} (taken {self.taken_on})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean_fields(fields: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in fields.items():
        k, v = str(key).strip(), str(value).strip()
        if not _FIELD.match(k):
            raise CaseError(f"A description field is a name of letters, digits and '_' (e.g. sex, age_band, hair), "
                            f"not {key!r}; nothing was stored.")
        if not v or len(v) > MAX_VALUE or any(ord(c) < 32 for c in v):
            raise CaseError(f"The value of {k!r} must be 1–{MAX_VALUE} printable characters; nothing was stored.")
        out[k] = v
    if not out:
        raise CaseError("A witness description needs at least one described field (e.g. sex=male); "
                        "nothing was stored.")
    return out


def record_witness(case: Case, reference: str, fields: Mapping[str, str], *, taken_on: str | None = None,
                   taken_by: str | None = None, user: str | None = None) -> WitnessDescription:
    """Store a witness's description (one audited entry).

    Args:
        reference: the witness's name or reference code as the case knows them.
        fields: described features, ``field -> value`` (see :data:`STANDARD_FIELDS`).
        taken_on: the date the description was taken (YYYY-MM-DD; default today).
        taken_by: who took it (default: the acting examiner).
    """
    ref = reference.strip()
    if not ref or len(ref) > 200 or any(ord(c) < 32 for c in ref):
        raise CaseError("Name the witness (a name or reference, up to 200 printable characters); nothing was stored.")
    clean = _clean_fields(fields)
    day = (taken_on or date.today().isoformat()).strip()
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise CaseError(f"The date the description was taken is YYYY-MM-DD, not {taken_on!r}; "
                        "nothing was stored.") from None
    if parsed > date.today():
        raise CaseError(f"The description cannot have been taken on {day}, a date still to come; nothing was stored.")
    user = resolve_user(user)
    by = (taken_by or "").strip() or user
    with case.write() as conn:
        witness_schema.ensure_tables(conn)
        cur = conn.execute("INSERT INTO witness_descriptions (reference, fields, taken_on, taken_by, created_at, "
                           "created_by) VALUES (?,?,?,?,?,?)",
                           (ref, canonical_json(clean), parsed.isoformat(), by, now_iso(), user))
        wid = int(cur.lastrowid or 0)
        case.log("witness.describe", f"witness:{wid}", user=user,
                 details={"reference": ref, "fields": sorted(clean), "taken_on": parsed.isoformat(), "taken_by": by},
                 records=[("witness_descriptions", wid)])
    return get_witness(case, wid)


def _row(r: Any) -> WitnessDescription:
    return WitnessDescription(int(r["id"]), str(r["reference"]), dict(json.loads(r["fields"])), str(r["taken_on"]),
                              str(r["taken_by"]), str(r["created_at"]), str(r["created_by"]))


def list_witnesses(case: Case) -> list[WitnessDescription]:
    """Every witness description of the case, oldest first (none in an older case without the table)."""
    if not witness_schema.present(case.conn):
        return []
    return [_row(r) for r in case.conn.execute("SELECT * FROM witness_descriptions ORDER BY id")]


def get_witness(case: Case, ref: int | str) -> WitnessDescription:
    """A description by its id, or by the witness's reference when exactly one record has it; else CaseError.

    When a witness has several descriptions (a later one), the reference is ambiguous and the id is asked for.
    """
    rows = list_witnesses(case)
    text = str(ref).strip()
    if text.isdigit():
        hit = [w for w in rows if w.id == int(text)]
        if hit:
            return hit[0]
    hit = [w for w in rows if w.reference.casefold() == text.casefold()]
    if len(hit) == 1:
        return hit[0]
    hint = f"See them with 'sketchface case witnesses {case.case_id}'."
    if len(hit) > 1:
        raise CaseError(f"Witness {text!r} has {len(hit)} descriptions in case {case.case_id} "
                        f"(ids {', '.join(str(w.id) for w in hit)}); give the id.", hint=hint)
    raise CaseError(f"Case {case.case_id} has no witness description {text!r}.", hint=hint)
