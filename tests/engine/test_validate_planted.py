"""Validation with a planted answer: galleries where every query's true rank is known by construction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import Cancelled
from engine.progress import CancelToken
from engine.validate import (
    GalleryMatrix,
    ResolvedCase,
    SolvedCase,
    cmc,
    hit_rates,
    subject_key,
    validate_vectors,
)
from engine.validate.ranking import rank_queries
from tests.engine.test_validate_support import orthonormal, synthetic_gallery

N_SUBJECTS = 120
N_TWINS = 60  # subjects with a second, weaker photo: grouping must not count it as a rival
N_LONERS = 10  # faces without a subject id: each stands alone in the list
SEXES = ("F", "M", None)


def planted(n_queries: int = 80, seed: int = 1) -> dict[str, Any]:
    """Gallery vectors are orthonormal, so a query's cosine to each subject is exactly its chosen coefficient."""
    rng = np.random.default_rng(seed)
    basis = orthonormal(N_SUBJECTS + N_TWINS + N_LONERS, seed=seed)
    subj = [f"S{i:03d}" for i in range(N_SUBJECTS)]
    vectors = list(basis[:N_SUBJECTS])
    subjects: list[str | None] = list(subj)
    meta: list[dict[str, Any] | None] = [
        {"sex": SEXES[i % 3], "birth_year": 1950 + (i * 7) % 50, "date": "2020-01-01", "region": "north" if i % 4
         else "south"} for i in range(N_SUBJECTS)]
    for j in range(N_TWINS):  # a second photo: cos(face2, e_i) = 0.5, so it scores half the first
        vectors.append(0.5 * basis[j] + np.sqrt(0.75) * basis[N_SUBJECTS + j])
        subjects.append(subj[j])
        meta.append(None)
    vectors += list(basis[N_SUBJECTS + N_TWINS:])
    subjects += [None] * N_LONERS
    meta += [None] * N_LONERS
    candidates = N_SUBJECTS + N_LONERS  # what a grouped list can hold
    values = np.linspace(0.95, 0.05, candidates)  # distinct coefficients, best first
    targets = rng.integers(0, N_SUBJECTS, n_queries)
    ranks = rng.choice([1, 1, 1, 2, 3, 5, 9, 10, 11, 40, 50, 51, 99, 130], n_queries)
    queries = []
    for t, r in zip(targets, ranks, strict=True):
        order = [i for i in range(candidates) if i != t]
        rng.shuffle(order)
        coeff = np.zeros(candidates)
        coeff[t] = values[r - 1]
        others = np.delete(values, r - 1)
        coeff[order] = others
        q = coeff[:N_SUBJECTS] @ basis[:N_SUBJECTS] + coeff[N_SUBJECTS:] @ basis[N_SUBJECTS + N_TWINS:]
        queries.append(q / np.linalg.norm(q))
    return {"vectors": np.asarray(vectors), "subjects": subjects, "meta": meta, "targets": targets,
            "ranks": ranks, "queries": np.asarray(queries, np.float32), "subject_names": subj}


@pytest.fixture
def world() -> Any:
    p = planted()
    g = synthetic_gallery("Planted", p["vectors"], p["subjects"], p["meta"])
    cases = [ResolvedCase(SolvedCase(f"case{i:03d}", Path(f"case{i:03d}.png"), p["subject_names"][t]),
                          subject_key(p["subject_names"][t], 0), "csv") for i, t in enumerate(p["targets"])]
    yield p, g, GalleryMatrix(g), cases
    g.close()


def test_exact_ranks_equal_the_planted_ranks(world: Any) -> None:
    p, _g, matrix, cases = world
    assert matrix.n_subjects == N_SUBJECTS + N_LONERS and matrix.n_faces == N_SUBJECTS + N_TWINS + N_LONERS
    out = rank_queries(matrix, p["queries"], [c.target for c in cases], block=7)  # blocks not dividing N
    assert out.ranks.tolist() == p["ranks"].tolist()
    values = np.linspace(0.95, 0.05, N_SUBJECTS + N_LONERS)
    norms = np.sqrt((values ** 2).sum())
    assert np.allclose(out.true_scores, values[p["ranks"] - 1] / norms, atol=1e-5)
    best_rival = np.where(p["ranks"] == 1, values[1], values[0]) / norms
    assert np.allclose(out.best_other, best_rival, atol=1e-5)
    # Other faces' scores (all of them: the gallery is smaller than the sample), the true subject's left out.
    own = sum(2 if t < N_TWINS else 1 for t in p["targets"])
    assert out.other_hist.sum() == len(cases) * matrix.n_faces - own


def test_streamed_gallery_in_small_blocks_gives_the_same_ranks(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Galleries too big to keep in memory are read block by block from the store: same answer."""
    import engine.validate.ranking as ranking

    p, g, cached, cases = world
    monkeypatch.setattr(ranking, "_CACHE_BYTES", 0)
    streamed = GalleryMatrix(g)
    assert streamed._cache is None
    streamed.faces_per_block = 7  # blocks end on subject boundaries, never inside a subject
    a = rank_queries(streamed, p["queries"], [c.target for c in cases], block=16)
    b = rank_queries(cached, p["queries"], [c.target for c in cases])
    assert a.ranks.tolist() == b.ranks.tolist() == p["ranks"].tolist()
    assert np.allclose(a.best_other, b.best_other) and np.allclose(a.true_scores, b.true_scores)


def test_ungrouped_twin_faces_would_change_ranks_negative_control(world: Any) -> None:
    """Negative control: counting each photo as its own candidate (no grouping) gives other ranks."""
    p, g, _m, cases = world
    loose = synthetic_gallery("Loose", p["vectors"], [s if i < N_SUBJECTS else None for i, s in
                                                      enumerate(p["subjects"])])
    out = rank_queries(GalleryMatrix(loose), p["queries"], [c.target for c in cases])
    assert (out.ranks >= p["ranks"]).all() and (out.ranks > p["ranks"]).any()
    scores = p["queries"] @ p["vectors"].T  # brute force: every face but the target's own is a rival
    for i, t in enumerate(p["targets"]):
        true = scores[i, t]
        rivals = np.delete(scores[i], t)
        assert out.ranks[i] == 1 + int(np.count_nonzero(rivals >= true - 1e-6))
    loose.close()


def test_cmc_and_hit_rates_equal_a_hand_computation(world: Any) -> None:
    p, _g, matrix, cases = world
    run = validate_vectors(matrix, cases, {"trained": (p["queries"], {"model_sha256": "ab" * 32})},
                           group_keys=["sex", "age_band", "region"])
    d = run.to_dict()["encoders"]["trained"]
    ranks = p["ranks"]
    n = len(ranks)
    for r in (1, 10, 50, 100):  # 200 > 130 candidates: not reported
        hand = sum(1 for x in ranks if x <= r)
        assert d["hit_rates"][str(r)]["hits"] == hand and d["hit_rates"][str(r)]["n"] == n
        assert d["hit_rates"][str(r)]["rate"] == pytest.approx(hand / n)
    assert "200" not in d["hit_rates"] and run.ranks_reported == [1, 10, 50, 100]
    curve = cmc(ranks, N_SUBJECTS + N_LONERS)
    assert curve[0] == pytest.approx(np.mean(ranks == 1)) and curve[-1] == 1.0
    assert all(curve[k - 1] == pytest.approx(np.mean(ranks <= k)) for k in range(1, 131))
    steps = d["cmc"]
    assert steps["rank"] == sorted(set(ranks.tolist())) and steps["rate"][-1] == 1.0
    assert d["median_rank"] == float(np.median(ranks))


def test_per_group_figures_sum_to_the_whole(world: Any) -> None:
    p, _g, matrix, cases = world
    run = validate_vectors(matrix, cases, {"trained": (p["queries"], {"model_sha256": "ab" * 32})},
                           group_keys=["sex", "age_band", "region"])
    d = run.to_dict()["encoders"]["trained"]
    for key in ("sex", "age_band", "region"):
        groups = d["groups"][key]
        assert sum(x["n"] for x in groups.values()) == len(cases)
        for r in ("1", "10", "50", "100"):
            assert sum(x["hit_rates"][r]["hits"] for x in groups.values()) == d["hit_rates"][r]["hits"]
    # The true subjects' sexes, by hand (None -> "unknown").
    expected = {}
    for t in p["targets"]:
        label = SEXES[t % 3] or "unknown"
        expected[label] = expected.get(label, 0) + 1
    assert {k: v["n"] for k, v in d["groups"]["sex"].items()} == expected
    # Age at the photo date (2020): birth years 1950..1999 -> every band but "unknown".
    assert "unknown" not in d["groups"]["age_band"]
    for label, x in d["groups"]["sex"].items():
        sub = [r for t, r in zip(p["targets"], p["ranks"], strict=True) if (SEXES[t % 3] or "unknown") == label]
        assert x["hit_rates"]["10"]["hits"] == sum(1 for r in sub if r <= 10)


def test_hit_rates_of_groups_have_wilson_intervals(world: Any) -> None:
    p, _g, matrix, cases = world
    run = validate_vectors(matrix, cases, {"trained": (p["queries"], {})}, group_keys=["sex"])
    for x in run.to_dict()["encoders"]["trained"]["groups"]["sex"].values():
        h = x["hit_rates"]["10"]
        assert 0 <= h["low"] <= h["rate"] <= h["high"] <= 1


def test_validation_is_cancellable(world: Any) -> None:
    p, _g, matrix, cases = world
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        validate_vectors(matrix, cases, {"trained": (p["queries"], {})}, cancel=token)


def test_hit_rates_direct() -> None:
    rates = hit_rates([1, 2, 10, 11, 300], at=(1, 10, 200))
    assert [(rates[r].hits, rates[r].n) for r in (1, 10, 200)] == [(1, 5), (3, 5), (4, 5)]
