"""Score calibration from a validation: what a cosine of 0.31 at rank 3 meant on the agency's own cases.

Raw cosines cannot be compared across queries or encoders. A validation gives, for each solved case,
the true match's score and rank and the best wrong candidate's score. From those the calibration
answers, for a candidate with score ``s`` at rank ``r``:

- the share of true matches in validation that scored at least ``s`` (non-increasing in ``s``),
- the share of true matches ranked ``r`` or better (non-decreasing in ``r``: the CMC),
- the share of cases whose best wrong candidate scored at least ``s`` (the false-alarm side).

Each is the empirical (step) function of the stored validation scores, monotone by construction and
exact ("63 % of 412"), so no smoothing can invent a figure the validation did not show. A calibration
is stored per encoder, keyed by the SHA-256 of the encoder's weights (a retrained encoder never
inherits an old calibration), in ``<models dir>/calibration/``, with the validation's size, date and
gallery. Without one, :func:`calibration_note` returns None and front-ends make no claim.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import models, paths
from engine.faces.pipeline import RECOGNIZER_ID
from engine.fsutil import atomic_write_text
from engine.models.digests import cached_digest
from engine.sketch.config import WEIGHTS_NAME
from engine.sketch.embedder import MODEL_ID
from engine.validate import stats
from engine.validate.cases import ValidationError

log = logging.getLogger(__name__)

SCHEMA = "sketchface.calibration/1"
MIN_CASES = 20  # fewer solved cases say too little to print a percentage next to every candidate
NO_CALIBRATION = ("No score calibration is in use for this encoder: scores are raw cosines, and nothing here "
                  "claims what they mean (Tools > Validate measures it on solved cases).")


@dataclass(frozen=True)
class Calibration:
    """The stored validation figures of one encoder (see the module docstring)."""

    encoder_kind: str
    encoder_sha256: str
    arcface_sha256: str | None
    validated_at: str
    n_cases: int
    gallery: dict[str, Any]
    true_scores: list[float]
    true_ranks: list[int]
    best_other: list[float]
    schema: str = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def share_scored_at_least(self, score: float) -> float:
        """Share of validation true matches with a score >= ``score``."""
        s = np.asarray(self.true_scores)
        return float(np.count_nonzero(s >= score - 1e-9)) / len(s)

    def share_ranked_within(self, rank: int) -> float:
        """Share of validation true matches at rank ``rank`` or better."""
        return float(np.count_nonzero(np.asarray(self.true_ranks) <= rank)) / len(self.true_ranks)

    def share_wrong_at_least(self, score: float) -> float | None:
        """Share of validation cases whose best wrong candidate scored >= ``score`` (None without data)."""
        b = np.asarray(self.best_other)
        return float(np.count_nonzero(b >= score - 1e-9)) / len(b) if len(b) else None

    def note(self, score: float, rank: int | None = None) -> str:
        """One sentence for a result row or a report (see :func:`calibration_note`)."""
        date = self.validated_at[:10]
        parts = [f"{_pct(self.share_scored_at_least(score))} of true matches scored at least this"]
        if rank is not None and rank >= 1:
            parts.append(f"{_pct(self.share_ranked_within(rank))} ranked {_ordinal(rank)} or better")
        wrong = self.share_wrong_at_least(score)
        tail = f"; the best wrong candidate scored at least this in {_pct(wrong)} of cases" if wrong is not None else ""
        return f"In validation on {self.n_cases} solved cases ({date}), {', '.join(parts)}{tail}."

    def legend(self) -> str:
        """What a percentage printed beside a score means, for a report (one paragraph)."""
        g = self.gallery
        return (f"Score calibration: percentages beside scores are the share of true matches that scored at least "
                f"that score in validation on {self.n_cases} solved cases ({self.validated_at[:10]}; gallery "
                f"{g.get('name', '?')} of {g.get('subjects', '?')} subjects; encoder {self.encoder_sha256[:12]}…).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        if d.get("schema") != SCHEMA:
            raise ValidationError(f"Not a calibration file (schema {d.get('schema')!r}).")
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        cal = cls(**fields)
        if not (len(cal.true_scores) == len(cal.true_ranks) == cal.n_cases) or cal.n_cases < 1:
            raise ValidationError("A calibration file is inconsistent (its case counts disagree).",
                                  hint="Run the validation again and adopt its calibration.")
        return cal


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def fit(run: Any, encoder: str) -> Calibration:
    """The calibration of ``encoder`` from a :class:`engine.validate.run.ValidationRun`."""
    o = run.encoders.get(encoder)
    if o is None:
        raise ValidationError(f"This validation has no results for the {encoder} encoder.")
    sha = o.embedder.get("model_sha256")
    if not sha:
        raise ValidationError(f"The {encoder} encoder has no recorded weights digest; it cannot be calibrated.")
    best = [float(x) for x in o.best_other if np.isfinite(x)]
    return Calibration(
        encoder_kind="arcface_baseline" if o.embedder.get("baseline") else "sketch_encoder",
        encoder_sha256=str(sha).lower(), arcface_sha256=o.embedder.get("arcface_sha256"),
        validated_at=run.created_at, n_cases=len(o.ranks), gallery=dict(run.gallery),
        true_scores=[round(float(x), 6) for x in o.true_scores], true_ranks=[int(x) for x in o.ranks],
        best_other=[round(x, 6) for x in best],
        extra={"groups": _groups(run, o)})


def _groups(run: Any, outcome: Any) -> dict[str, Any]:
    """Hit rates per group (sex, age band, ...) with sizes and 95 % intervals, kept so reports can disclose them."""
    values = getattr(run, "group_values", None) or {}
    at = getattr(run, "ranks_reported", stats.REPORT_RANKS)
    return {k: stats.breakdown(outcome.ranks, v, at, stats.group_order(k)) for k, v in values.items()}


def calibration_dir() -> Path:
    return paths.models_dir() / "calibration"


def _path(sha: str) -> Path:
    if not sha or not all(c in "0123456789abcdef" for c in sha.lower()):
        raise ValidationError(f"{sha!r} is not a SHA-256 digest.")
    return calibration_dir() / f"{sha.lower()}.json"


def save(cal: Calibration) -> Path:
    """Store ``cal`` for its encoder (replacing an older one), written atomically."""
    if cal.n_cases < MIN_CASES:
        raise ValidationError(f"A calibration needs at least {MIN_CASES} solved cases; this validation has "
                              f"{cal.n_cases}.", hint="Add solved cases and validate again.")
    target = _path(cal.encoder_sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(cal.to_dict(), indent=1))
    return target


def load(encoder_sha256: str) -> Calibration | None:
    """The stored calibration of the encoder with these weights, or None (a damaged file is logged, ignored)."""
    try:
        path = _path(encoder_sha256)
    except ValidationError:
        return None
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        return None
    cached = _CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        cal: Calibration | None = Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, ValidationError) as exc:
        log.warning("ignoring the calibration %s: %s", path, exc)
        cal = None
    if cal is not None and cal.encoder_sha256 != encoder_sha256.lower():
        cal = None
    _CACHE[path] = (stamp, cal)
    return cal


_CACHE: dict[Path, tuple[tuple[int, int], Calibration | None]] = {}  # results grids ask once per row: read each file once


def _encoder_sha(encoder: str | Mapping[str, Any] | None) -> str | None:
    if encoder is None:
        return None
    if isinstance(encoder, str):
        return encoder
    return encoder.get("sha256") or encoder.get("model_sha256")


def calibration_for(encoder: str | Mapping[str, Any] | None) -> Calibration | None:
    """The usable stored calibration of an encoder (digest, manifest ``embedder`` dict or description), or None."""
    sha = _encoder_sha(encoder)
    cal = load(sha) if sha else None
    return cal if cal is not None and cal.n_cases >= MIN_CASES else None


def installed_encoder_sha256(baseline: bool) -> str | None:
    """Weights digest of the installed sketch encoder (of ArcFace for the baseline), from the digest cache only.

    Never hashes (safe in a GUI thread): None when the model is not installed or its digest is not cached
    yet (any search caches it), and then no calibration is claimed.
    """

    model_id = RECOGNIZER_ID if baseline else MODEL_ID
    if not models.installed(model_id):
        return None
    name = models.get_spec(model_id).primary.path if baseline else WEIGHTS_NAME
    return cached_digest(models.model_dir(model_id) / name)


def calibration_note(score: float, rank: int | None, encoder: str | Mapping[str, Any] | None) -> str | None:
    """The calibration sentence for a candidate, or None when this encoder has no (usable) calibration.

    Args:
        score: the candidate's cosine.
        rank: its rank in the result list (None to leave the rank part out, e.g. blind review).
        encoder: the encoder's weights SHA-256, or a search manifest's ``embedder`` dict
            (``{"kind", "sha256"}``) or an embedder description (``model_sha256``).
    """
    cal = calibration_for(encoder)
    return None if cal is None else cal.note(float(score), rank)
