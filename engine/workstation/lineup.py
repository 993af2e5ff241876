"""Build a fair photo line-up from a case candidate: fillers from the galleries, fairness measured, recorded.

Why a use case: it joins the galleries (faces, subjects, metadata, stored ArcFace vectors, thumbnails)
and the case (the candidate, the subjects already linked to the case, the audited record), so the
command line and the window build the same line-up the same way.

How fillers are chosen (every rule and figure is recorded with the line-up):

- *Description*: each ticked field (``match``: sex, age band, or any other metadata key) must hold the
  witness's value. With a witness record named (``witness``, :mod:`engine.cases.witness`) the value comes
  from that record, and a ticked field the record lacks is refused (never filled from the suspect); a
  value typed in ``description`` overrides it and is recorded as typed. Without a witness record, a ticked
  field the examiner gives no value for takes the suspect's recorded value (which then fits the suspect
  by construction). The line-up records the source of each value and the witness record it used.
  Age band is the metadata ``age_band`` where present, else the decade of (photo year − birth year).
- *Similarity band*: the cosine between the suspect's and a filler's stored ArcFace vectors must lie in
  [lo, hi]. By default lo and hi are the :data:`DEFAULT_QUANTILES` (50th and 99th percentiles) of the
  suspect's non-mate scores: his cosine to every face of another known subject in the chosen galleries.
  Above the median stranger, so the suspect does not stand out; below the top 1 %, so no filler is a
  look-alike that could be mistaken for him. The band and its quantiles are recorded and shown.
- *Identities*: one face per subject; every filler is a different known subject from the suspect and
  from each other, and no filler is a subject of this case (:func:`engine.cases.lineup.case_subjects`).
  A face without a subject id cannot be shown to be someone else and is never used.
- *Randomness from one recorded seed*: which eligible fillers are drawn, and the suspect's position
  (:func:`suspect_position`), follow from the line-up's seed, so the arrangement can be reproduced.

Local galleries only: a server gallery does not yet return stored vectors for a whole-gallery scan.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.cases import Case
from engine.cases import lineup as records
from engine.cases import witness as witness_records
from engine.cases.lineup import FILLER, SUSPECT, Lineup, Member
from engine.cases.lineup_fairness import assess, fits
from engine.cases.lineup_pdf import administration_pdf
from engine.errors import CaseError, EngineError
from engine.fsutil import sha256_bytes

if TYPE_CHECKING:
    from engine.gallery import Gallery
    from engine.workstation.core import Workstation

DEFAULT_FILLERS = 5
DEFAULT_MATCH = ("sex", "age_band")
DEFAULT_QUANTILES = (0.50, 0.99)
MIN_NON_MATES = 20


class LineupError(EngineError):
    """A line-up cannot be built or changed as asked; nothing was recorded."""

    title = "Line-up"


@dataclass(frozen=True)
class LineupRules:
    """How to build a line-up (see the module docstring).

    Args:
        fillers: how many fillers besides the suspect (Wells et al. 2020 recommend at least five).
        match: the description fields fillers must fit.
        description: the witness's value per field; a ticked field without one takes the suspect's value.
        band: (lo, hi) cosine to the suspect; None takes :attr:`quantiles` of the non-mate scores.
        galleries: local gallery references to draw fillers from (default: the suspect's gallery).
        seed: the random seed (default: drawn from the OS and recorded).
        witness: the case's witness description to take the values from (its id or reference).
    """

    fillers: int = DEFAULT_FILLERS
    match: tuple[str, ...] = DEFAULT_MATCH
    description: Mapping[str, str] = field(default_factory=dict)
    band: tuple[float, float] | None = None
    quantiles: tuple[float, float] = DEFAULT_QUANTILES
    mode: str = "simultaneous"
    galleries: tuple[str, ...] = ()
    seed: int | None = None
    witness: str | None = None


def age_band(meta: Mapping[str, Any]) -> str | None:
    """The face's age band: metadata ``age_band``, else the decade of photo year − birth year ('30-39')."""
    if meta.get("age_band"):
        return str(meta["age_band"])
    birth = meta.get("birth_year")
    if birth is None or not str(birth).strip().lstrip("-").isdigit():
        return None
    date = str(meta.get("date") or "")
    year = int(date[:4]) if date[:4].isdigit() else datetime.now(UTC).year
    age = year - int(birth)
    return f"{10 * (age // 10)}-{10 * (age // 10) + 9}" if age >= 0 else None


def member_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata a member is recorded with: its fields plus the derived age band (no image bytes)."""
    out = {k: v for k, v in meta.items() if isinstance(v, str | int | float) and k != "thumbnail"}
    band = age_band(meta)
    if band is not None:
        out["age_band"] = band
    return out


def suspect_position(seed: int, size: int) -> int:
    """The suspect's position (1..size) that ``seed`` gives: one stream of the seed, independent of the fillers."""
    return 1 + int(np.random.default_rng([seed, 1]).integers(size))


@dataclass
class _Face:
    gallery: Gallery
    face_id: int
    subject: str
    score: float


@dataclass
class Pool:
    """The faces a line-up may draw fillers from, and the band and counts that explain the pool's size."""

    eligible: list[tuple[_Face, dict[str, Any]]]
    band: tuple[float, float]
    band_source: str
    non_mates: int
    in_band: int


def _suspect_vector(g: Gallery, face_id: int) -> np.ndarray:
    v = g.store.embeddings([face_id])
    if not len(v):
        raise LineupError(f"Face {face_id} is no longer in gallery {g.name}; the line-up cannot be built.")
    return np.asarray(v[0], dtype=np.float32)


def _non_mates(galleries: Sequence[Gallery], q: np.ndarray, exclude: set[str]) -> list[_Face]:
    """Every face of a known subject other than ``exclude`` in ``galleries``, with its cosine to ``q``."""
    out: list[_Face] = []
    for g in galleries:
        rows = [(f, s) for f, s, _sha, _primary in g.store.face_subjects() if s and s.strip() and s not in exclude]
        if not rows:
            continue
        scores = g.store.embeddings([f for f, _ in rows]) @ q
        out += [_Face(g, f, str(s), float(x)) for (f, s), x in zip(rows, scores, strict=True)]
    return out


def build_pool(galleries: Sequence[Gallery], q: np.ndarray, suspect_subject: str, case_subjects: set[str],
               description: Mapping[str, str], rules: LineupRules, taken: Collection[str] = ()) -> Pool:
    """Eligible fillers (one face per subject, fitting ``description``, inside the band), best-quality face first."""
    strangers = _non_mates(galleries, q, {suspect_subject})
    if rules.band is not None:
        lo, hi = float(rules.band[0]), float(rules.band[1])
        source = "given"
    else:
        if len(strangers) < MIN_NON_MATES:
            raise LineupError(f"The chosen galleries hold {len(strangers)} faces of other known subjects; at least "
                              f"{MIN_NON_MATES} are needed to set the similarity band. Nothing was built.",
                              hint="Add galleries with subject ids, or give the band yourself (--band LO:HI).")
        scores = np.array([f.score for f in strangers])
        lo, hi = (float(np.quantile(scores, p)) for p in rules.quantiles)
        source = f"quantiles {rules.quantiles[0]:.2f}–{rules.quantiles[1]:.2f} of {len(strangers)} non-mate scores"
    banded = [f for f in strangers if lo <= f.score <= hi and f.subject not in case_subjects | set(taken)]
    by_subject: dict[str, tuple[_Face, dict[str, Any]]] = {}
    for g in {id(f.gallery): f.gallery for f in banded}.values():
        mine = [f for f in banded if f.gallery is g]
        infos = g.store.face_infos([f.face_id for f in mine])
        for f in mine:
            meta = member_metadata(infos[f.face_id].metadata)
            if fits(meta, description) and f.subject not in by_subject:
                by_subject[f.subject] = (f, meta)
    eligible = sorted(by_subject.values(), key=lambda x: (x[0].gallery.id, x[0].face_id))
    return Pool(eligible, (lo, hi), source, len(strangers), len(banded))


def _description(rules: LineupRules, suspect_meta: Mapping[str, Any],
                 witness: witness_records.WitnessDescription | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(field -> value, field -> where the value came from) for every ticked field."""
    values, sources = {}, {}
    for key in rules.match:
        key = key.strip()
        if not key:
            continue
        given = rules.description.get(key)
        if given is not None and str(given).strip():
            values[key] = str(given).strip()
            sources[key] = "typed (overrides the witness record)" if witness else "witness description"
        elif witness is not None:
            if not str(witness.fields.get(key, "")).strip():
                raise LineupError(f"Witness record {witness.id} ({witness.reference}) gives no value for {key!r}. "
                                  "Nothing was built.", hint=f"Untick it, or type the value (--describe {key}=VALUE).")
            values[key], sources[key] = str(witness.fields[key]).strip(), f"witness record {witness.id}"
        elif suspect_meta.get(key) is not None:
            values[key], sources[key] = str(suspect_meta[key]), "suspect's gallery record"
        else:
            raise LineupError(f"The description field {key!r} has no value: the witness description gives none and "
                              "the suspect's gallery record has none. Nothing was built.",
                              hint=f"Give it (e.g. --describe {key}=VALUE) or untick it.")
    return values, sources


def _member(face: _Face, meta: Mapping[str, Any], position: int, role: str) -> Member:
    info = face.gallery.store.face_infos([face.face_id])[face.face_id]
    thumb = face.gallery.thumbnail(face.face_id)
    if thumb is None:
        raise LineupError(f"Face {face.face_id} of gallery {face.gallery.name} has no thumbnail to show.")
    return Member(position, role, face.gallery.id, face.face_id, face.subject, info.sha256, sha256_bytes(thumb),
                  round(face.score, 6), dict(meta))


def _fairness(lineup_members: Sequence[Member], vectors: Mapping[int, np.ndarray], description: Mapping[str, str],
              seed: int) -> tuple[dict[str, Any], str]:
    suspect = next(m for m in lineup_members if m.role == SUSPECT)
    fillers = [m for m in lineup_members if m.role == FILLER]
    idx = [m.position for m in lineup_members].index(suspect.position)
    return assess(vectors[suspect.position], np.stack([vectors[m.position] for m in fillers]),
                  [m.metadata for m in lineup_members], description, idx, seed)


def _galleries(ws: Workstation, refs: Sequence[str], suspect_gallery: str) -> list[Gallery]:
    out = []
    for ref in refs or (suspect_gallery,):
        if ref.startswith("pg:"):
            raise LineupError(f"{ref} is a server gallery: line-ups draw fillers from local galleries only for now.")
        out.append(ws.gallery(ref))
    return out


def build_lineup(ws: Workstation, case: Case, search_id: int, gallery_id: str, face_id: int,
                 rules: LineupRules | None = None, *, user: str | None = None) -> Lineup:
    """Build a line-up around the candidate ``gallery_id:face_id`` of search ``search_id`` and record it.

    Raises:
        LineupError: too few faces fit (the message gives the counts); nothing is recorded.
    """
    rules = rules or LineupRules()
    if rules.fillers < 2:
        raise LineupError("A line-up needs at least two fillers (five or more are recommended).")
    row = records.candidate(case, search_id, gallery_id, face_id)
    suspect_subject = str(row.get("subject_id") or "").strip()
    if not suspect_subject:
        raise LineupError(f"Candidate {gallery_id}:{face_id} has no subject id, so no filler can be shown to be "
                          "someone else. Nothing was built.", hint="Add subject ids to the gallery's metadata.")
    sg = ws.gallery(gallery_id)
    q = _suspect_vector(sg, face_id)
    s_meta = member_metadata(sg.store.face_infos([face_id])[face_id].metadata)
    witness = witness_records.get_witness(case, rules.witness) if rules.witness is not None else None
    description, sources = _description(rules, s_meta, witness)
    seed = rules.seed if rules.seed is not None else secrets.randbits(62)
    pool = build_pool(_galleries(ws, rules.galleries, gallery_id), q, suspect_subject,
                      records.case_subjects(case), description, rules)
    if len(pool.eligible) < rules.fillers:
        fields = ", ".join(f"{k}={v}" for k, v in description.items()) or "no field"
        raise LineupError(
            f"Only {len(pool.eligible)} subject(s) fit the description ({fields}) with a similarity to the suspect in "
            f"[{pool.band[0]:.3f}, {pool.band[1]:.3f}] ({pool.in_band} faces in the band of {pool.non_mates} "
            f"non-mates); the line-up needs {rules.fillers} fillers. Nothing was built.",
            hint="Add galleries, tick fewer description fields, widen the band, or use fewer fillers.")
    rng = np.random.default_rng([seed, 0])
    drawn = [pool.eligible[int(i)] for i in rng.choice(len(pool.eligible), rules.fillers, replace=False)]
    size = rules.fillers + 1
    spos = suspect_position(seed, size)
    positions = [p for p in range(1, size + 1) if p != spos]
    suspect_face = _Face(sg, face_id, suspect_subject, 1.0)
    members = [_member(suspect_face, s_meta, spos, SUSPECT)]
    members += [_member(f, meta, p, FILLER) for p, (f, meta) in zip(positions, drawn, strict=True)]
    members.sort(key=lambda m: m.position)
    vectors = {spos: q, **{p: f.gallery.store.embeddings([f.face_id])[0] for p, (f, _) in zip(positions, drawn,
                                                                                                   strict=True)}}
    fairness, warning = _fairness(members, vectors, description, seed)
    params = {"fillers": rules.fillers, "match": list(description), "description_sources": sources,
              "band": list(pool.band), "band_source": pool.band_source, "quantiles": list(rules.quantiles),
              "galleries": [g.id for g in _galleries(ws, rules.galleries, gallery_id)],
              "eligible_subjects": len(pool.eligible), "non_mates": pool.non_mates, "in_band": pool.in_band,
              "excluded_case_subjects": len(records.case_subjects(case))}
    if witness is not None:
        params["witness"] = {"id": witness.id, "reference": witness.reference, "taken_on": witness.taken_on,
                             "taken_by": witness.taken_by}
    return records.store_lineup(case, search_id, members, mode=rules.mode, seed=seed, description=description,
                                params=params, fairness=fairness, warning=warning, user=user)


def _vectors(ws: Workstation, members: Sequence[Member]) -> dict[int, np.ndarray]:
    return {m.position: ws.gallery(m.gallery_id).store.embeddings([m.face_id])[0] for m in members}


def swap_filler(ws: Workstation, case: Case, lineup_id: int, position: int, reason: str, *,
                replacement: tuple[str, int] | None = None, user: str | None = None) -> Lineup:
    """Replace the filler at ``position`` (by ``replacement`` or the next eligible face) and record why.

    A replacement the examiner names is not held to the description or the band (the examiner may
    know better); whether it fits is recorded with it (``fits_description``, ``in_band``), and the
    fairness figures are recomputed, so a swap that makes the suspect stand out is warned about.
    """
    lineup = records.get_lineup(case, lineup_id)
    if not reason.strip():
        raise LineupError("Say why the filler is swapped (the reason is recorded).")
    if not any(m.position == position and m.role == FILLER for m in lineup.members):
        raise LineupError(f"Position {position} of line-up {lineup_id} is not a filler; only fillers can be swapped.")
    suspect = lineup.suspect
    sg = ws.gallery(suspect.gallery_id)
    q = _suspect_vector(sg, suspect.face_id)
    lo, hi = (float(x) for x in lineup.params["band"])
    taken = {m.subject_id for m in lineup.members}
    if replacement is None:
        rules = LineupRules(band=(lo, hi), galleries=tuple(lineup.params.get("galleries") or ()))
        pool = build_pool(_galleries(ws, rules.galleries, suspect.gallery_id), q, suspect.subject_id,
                          records.case_subjects(case), lineup.description, rules, taken)
        if not pool.eligible:
            raise LineupError(f"No other subject fits line-up {lineup_id}'s description and band; nothing was swapped.")
        rng = np.random.default_rng([lineup.seed, 2, len(lineup.swaps)])
        face, meta = pool.eligible[int(rng.integers(len(pool.eligible)))]
    else:
        g = ws.gallery(replacement[0])
        infos = g.store.face_infos([int(replacement[1])])
        if int(replacement[1]) not in infos:
            raise LineupError(f"Gallery {g.name} has no face {replacement[1]}.")
        info = infos[int(replacement[1])]
        subject = str(info.subject_id or "").strip()
        if not subject:
            raise LineupError("That face has no subject id, so it cannot be shown to be someone else.")
        if subject in taken or subject in records.case_subjects(case):
            raise LineupError(f"Subject {subject} is already in this line-up or linked to this case; choose another.")
        meta = member_metadata(info.metadata)
        score = float(g.store.embeddings([int(replacement[1])])[0] @ q)
        face = _Face(g, int(replacement[1]), subject, score)
    meta = {**meta, "fits_description": fits(meta, lineup.description), "in_band": lo <= face.score <= hi}
    new = _member(face, meta, position, FILLER)
    members = [new if m.position == position else m for m in lineup.members]
    fairness, warning = _fairness(members, _vectors(ws, members), lineup.description, lineup.seed)
    return records.swap_member(case, lineup_id, new, reason=reason, fairness=fairness, warning=warning, user=user)


def lineup_material(ws: Workstation, case: Case, lineup_id: int, *, mode: str | None = None,
                    generated_at: str | None = None) -> bytes:
    """The administration PDF (no mark of the suspect); each photo checked against its recorded digest."""
    lineup = records.get_lineup(case, lineup_id)
    thumbs: dict[int, bytes] = {}
    for m in lineup.members:
        data = ws.gallery(m.gallery_id).thumbnail(m.face_id)
        if data is None or sha256_bytes(data) != m.thumbnail_sha256:
            raise CaseError(f"The photo at position {m.position} of line-up {lineup_id} is no longer the one "
                            "recorded (its gallery thumbnail changed); the material was not made.")
        thumbs[m.position] = data
    return administration_pdf(lineup, thumbs, case_number=case.info.case_number, mode=mode or lineup.mode,
                              generated_at=generated_at)


def record_response(case: Case, lineup_id: int, choice: int | None, confidence: str, *, administrator: str = "",
                    material: bytes | None = None, user: str | None = None) -> records.Response:
    """Record the witness's choice and confidence (see :func:`engine.cases.lineup.record_response`)."""
    return records.record_response(case, lineup_id, choice, confidence, administrator=administrator,
                                   material_sha256=sha256_bytes(material) if material else "", user=user)
