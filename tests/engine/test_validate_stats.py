"""Interval coverage by simulation, and score calibration: monotone, reproduces planted rates, no claim without it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import paths
from engine.validate import Calibration, calibration_note, fit, load, save, wilson
from engine.validate.calibration import MIN_CASES, calibration_dir
from engine.validate.cases import ValidationError
from engine.validate.run import EncoderOutcome, ValidationRun
from engine.validate.stats import age_band, breakdown, rate


def coverage(p: float, n: int, trials: int, rng: np.random.Generator) -> float:
    hits = rng.binomial(n, p, size=trials)
    inside = 0
    for k in hits:
        low, high = wilson(int(k), n)
        inside += low <= p <= high
    return inside / trials


@pytest.mark.parametrize("p,n", [(0.5, 20), (0.1, 50), (0.9, 100), (0.63, 412), (0.97, 200)])
def test_wilson_interval_covers_the_true_rate_about_95_percent(p: float, n: int) -> None:
    cov = coverage(p, n, 4000, np.random.default_rng(int(p * 1000) + n))
    # Wilson is known to stay near nominal (within ~2-3 points) where Wald fails; 4000 trials: SE 0.35 points.
    assert 0.92 <= cov <= 0.99, cov


def test_wald_interval_would_fail_the_same_check_negative_control() -> None:
    """The simulation can tell a bad interval: the normal approximation covers far less at p=0.97, n=30."""
    rng = np.random.default_rng(5)
    p, n = 0.97, 30
    hits = rng.binomial(n, p, size=4000)
    phat = hits / n
    half = 1.96 * np.sqrt(phat * (1 - phat) / n)
    wald = np.mean((phat - half <= p) & (p <= phat + half))
    assert wald < 0.90 and coverage(p, n, 4000, rng) > 0.92


def test_wilson_edges_and_bad_input() -> None:
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)  # textbook value
    assert rate(0, 0).rate is None and rate(0, 0).percent() == "—"
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_age_bands_and_breakdown_order() -> None:
    assert [age_band(y, 2020) for y in (2000, 1990, 1980, 1970, 1950, None, "x", 2030)] == [
        "under 25", "25–34", "35–44", "45–54", "55 and over", "unknown", "unknown", "unknown"]
    b = breakdown([1, 5, 300, 2], ["F", "M", "F", "unknown"], at=(1, 10))
    assert list(b) == ["F", "M", "unknown"] and b["F"]["n"] == 2 and b["F"]["hit_rates"]["10"]["hits"] == 1


# --------------------------------------------------------------------------------- calibration
def planted_run(n: int = 100, seed: int = 0) -> tuple[ValidationRun, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = np.round(rng.uniform(0.05, 0.75, n), 4)
    ranks = rng.integers(1, 500, n)
    other = np.round(rng.uniform(0.0, 0.5, n), 4).astype(np.float32)
    o = EncoderOutcome("trained", {"model_sha256": "AB" * 32, "arcface_sha256": "cd" * 32, "baseline": False},
                       ranks, true.astype(np.float32), other, np.zeros(200, np.int64))
    run = ValidationRun({"id": "g", "name": "G", "subjects": 1000, "faces": 1000}, [], [], [], {},
                        {"trained": o}, "2026-11-29T10:00:00+00:00", n)
    return run, true, ranks


def test_calibration_reproduces_the_planted_rates_and_is_monotone() -> None:
    run, true, ranks = planted_run()
    cal = fit(run, "trained")
    assert cal.encoder_sha256 == "ab" * 32 and cal.n_cases == 100 and cal.encoder_kind == "sketch_encoder"
    for s in (0.1, 0.31, 0.5, 0.7):
        assert cal.share_scored_at_least(s) == pytest.approx(np.mean(true >= s))
    for r in (1, 10, 100, 499):
        assert cal.share_ranked_within(r) == pytest.approx(np.mean(ranks <= r))
    grid = np.linspace(-1, 1, 401)
    shares = [cal.share_scored_at_least(s) for s in grid]
    assert all(a >= b for a, b in zip(shares, shares[1:], strict=False)) and shares[0] == 1.0 and shares[-1] == 0.0
    cmc = [cal.share_ranked_within(r) for r in range(1, 600)]
    assert all(a <= b for a, b in zip(cmc, cmc[1:], strict=False))
    # At a planted score itself the share counts that case ("at least this").
    s0 = float(np.sort(true)[37])
    assert cal.share_scored_at_least(s0) == pytest.approx(np.mean(true >= s0)) and np.mean(true >= s0) >= 0.63


def test_no_calibration_no_claim_then_a_stored_one_is_used(sketchface_home: Path) -> None:
    sha = "ab" * 32
    assert calibration_note(0.31, 3, sha) is None  # nothing stored: no claim
    run, true, ranks = planted_run()
    path = save(fit(run, "trained"))
    assert path.parent == calibration_dir() and path.parent.parent == paths.models_dir()
    note = calibration_note(0.31, 3, {"kind": "sketch_encoder", "sha256": sha})
    assert note is not None
    share = round(100 * float(np.mean(true >= 0.31)))
    assert note.startswith("In validation on 100 solved cases (2026-11-29), ") and f"{share} % of true matches" in note
    assert f"{round(100 * float(np.mean(ranks <= 3)))} % ranked 3rd or better" in note
    assert calibration_note(0.31, None, sha) is not None and "ranked" not in str(calibration_note(0.31, None, sha))
    assert calibration_note(0.31, 3, "cd" * 32) is None  # another encoder's weights: no claim


def test_calibration_needs_enough_cases_and_rejects_damaged_files(sketchface_home: Path) -> None:
    run, _, _ = planted_run(MIN_CASES - 1)
    with pytest.raises(ValidationError, match="at least"):
        save(fit(run, "trained"))
    run, _, _ = planted_run(40)
    path = save(fit(run, "trained"))
    data: dict[str, Any] = json.loads(path.read_text())
    data["n_cases"] = 41  # counts disagree
    path.write_text(json.dumps(data))
    assert load("ab" * 32) is None and calibration_note(0.3, 1, "ab" * 32) is None
    path.write_text("{not json")
    assert load("ab" * 32) is None
    with pytest.raises(ValidationError):
        Calibration.from_dict({"schema": "other"})


def test_installed_encoder_digest_comes_from_the_cache_only(installed_models: Path) -> None:
    """The results grid asks from the GUI thread: an uncached digest is None (no claim), never a hash."""
    from engine.models import digests
    from engine.sketch.embedder import file_sha256
    from engine.validate import installed_encoder_sha256

    digests._memory.clear()  # a fresh process: nothing hashed yet in memory
    monkey = digests._read_disk_cache
    try:
        digests._read_disk_cache = lambda: {}  # type: ignore[assignment]
        assert installed_encoder_sha256(True) is None and installed_encoder_sha256(False) is None
    finally:
        digests._read_disk_cache = monkey  # type: ignore[assignment]
    arcface = file_sha256("buffalo_l.w600k_r50")  # what a search does: hash once, cached
    assert installed_encoder_sha256(True) == arcface
    encoder = file_sha256("sketch_encoder", "model.safetensors")
    assert installed_encoder_sha256(False) == encoder
