"""Pairing by stem, identity split, deterministic two-view samples, and the ArcFace prototype cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.sketch.config import PreprocessConfig
from engine.sketch.transforms import strong_augment, weak_augment
from tests.trainer import synthetic
from trainer.config import TeacherConfig
from trainer.data import EpochSampler, SketchViews, pair_dataset, split_by_identity
from trainer.teacher import compute_prototypes


def _touch_image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def test_pairs_by_stem_across_extensions_and_reports_the_rest(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png", "c.jpg", "c.png", "only_photo.jpg"):
        _touch_image(tmp_path / "real" / name)
    for name in ("a.png", "b.jpeg", "c.png", "only_sketch.png"):
        _touch_image(tmp_path / "sketch" / name)
    (tmp_path / "sketch" / "notes.txt").write_text("not an image")
    pairing = pair_dataset(tmp_path)
    assert [p.id for p in pairing.pairs] == ["a", "b", "c"]
    assert pairing.pairs[1].real.name == "b.png" and pairing.pairs[1].sketch.name == "b.jpeg"
    assert pairing.unpaired_real == ["only_photo.jpg"]
    assert pairing.unpaired_sketch == ["only_sketch.png"]
    assert pairing.duplicate_stems == ["c.png"]  # real/c.jpg is used, real/c.png reported
    assert pairing.summary()["unpaired_real"] == 1


def test_missing_folder_says_what_a_dataset_looks_like(tmp_path: Path) -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        pair_dataset(tmp_path)
    assert "real/" in str(err.value) and "make-sketches" in str(err.value)


def test_identity_split_is_disjoint_deterministic_and_stable_as_the_dataset_grows() -> None:
    ids = [f"id{i:03d}" for i in range(100)]
    train, val = split_by_identity(ids, 0.2, seed=3)
    assert 10 <= len(val) <= 30 and not set(train) & set(val) and sorted(train + val) == ids
    assert split_by_identity(ids, 0.2, seed=3) == (train, val)
    assert split_by_identity(ids, 0.2, seed=4)[1] != val
    grown_train, grown_val = split_by_identity(ids + [f"new{i}" for i in range(25)], 0.2, seed=3)
    assert set(val) <= set(grown_val) and set(train) <= set(grown_train)  # nobody changes sides
    assert len(split_by_identity(ids[:5], 0.01, seed=3, min_val=2)[1]) == 2  # small sets: min_val held out


def _views(tmp_path: Path) -> SketchViews:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        p = tmp_path / f"s{i}.png"
        Image.fromarray(synthetic.sketch(synthetic.random_identity(rng), rng)).save(p)
        paths.append(p)
    return SketchViews(paths, PreprocessConfig(input_size=64), weak_augment(), strong_augment(), seed=5)


def test_views_depend_only_on_seed_epoch_and_index(tmp_path: Path) -> None:
    ds = _views(tmp_path)
    w1, s1, label = ds[2]
    assert label == 2 and w1.shape == (3, 64, 64) and s1.shape == (3, 64, 64)
    w2, s2, _ = ds[2]
    assert torch.equal(w1, w2) and torch.equal(s1, s2)
    assert not torch.equal(w1, s1)  # two different views
    ds.set_epoch(1)
    w3, _, _ = ds[2]
    assert not torch.equal(w1, w3)
    fresh = _views(tmp_path)  # e.g. a data-loader worker or a resumed run
    fresh.set_epoch(1)
    assert torch.equal(fresh[2][0], w3)


def test_training_views_are_mirrored_with_the_references_probability(tmp_path: Path) -> None:
    """The reference flips each view left-right with p 0.5; the recipe's default does the same."""
    from engine.sketch.transforms import AugmentConfig
    from trainer.config import TrainConfig

    assert TrainConfig().data.hflip_p == 0.5
    ident = AugmentConfig(rotate=0.0, scale=0.0, translate=0.0, contrast=0.0, brightness=0.0)  # the identity
    paths = _views(tmp_path).sketches
    pre = PreprocessConfig(input_size=64)
    plain = SketchViews(paths, pre, ident, ident, seed=5, hflip_p=0.0)
    always = SketchViews(paths, pre, ident, ident, seed=5, hflip_p=1.0)
    w0, s0, _ = plain[1]
    w1, s1, _ = always[1]
    assert torch.allclose(w1, w0.flip(-1), atol=1e-6) and torch.allclose(s1, s0.flip(-1), atol=1e-6)
    assert not torch.allclose(w0, w0.flip(-1), atol=1e-3)  # the sketch is not symmetric: a flip is visible
    half = SketchViews(paths, pre, ident, ident, seed=5, hflip_p=0.5)
    draws = [half.flips(i) for i in range(400)]
    weak_share = sum(w for w, _ in draws) / 400
    assert 0.42 < weak_share < 0.58 and 0.42 < sum(s for _, s in draws) / 400 < 0.58
    assert any(w != s for w, s in draws)  # the two views flip independently
    w, s, _ = half[1]
    fw, fs = half.flips(1)
    assert torch.allclose(w, w0.flip(-1) if fw else w0, atol=1e-6)
    assert torch.allclose(s, s0.flip(-1) if fs else s0, atol=1e-6)


def test_epoch_sampler_skips_consumed_batches_for_mid_epoch_resume() -> None:
    sampler = EpochSampler(20, world=1, rank=0, seed=1, batch_size=4)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_epoch(3, skip_batches=2)
    assert list(sampler) == full[8:] and len(sampler) == 12
    assert sampler.full_batches() == 5
    ranks = [EpochSampler(20, world=2, rank=r, seed=1, batch_size=4) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(0)
    assert not set(ranks[0]) & set(ranks[1])


def test_prototype_cache_reuses_recomputes_and_counts_fallbacks(tmp_path: Path, tiny_models_dir: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 4, seed=0)
    Image.fromarray(np.full((160, 160, 3), 200, np.uint8)).save(root / "real" / "flat.jpg")  # no face
    Image.fromarray(np.full((60, 60, 3), 255, np.uint8)).save(root / "sketch" / "flat.png")
    cfg = TeacherConfig(arcface_onnx=str(tiny_models_dir / "buffalo_l.w600k_r50" / "w600k_r50.onnx"),
                        detector_onnx=str(tiny_models_dir / "buffalo_l.det_10g" / "det_10g.onnx"), device="cpu")
    pairs = pair_dataset(root).pairs
    cache = root / "arcface_prototypes.npz"
    first = compute_prototypes(pairs, cfg, cache, no_face="centre_crop")
    assert (first.computed, first.reused) == (5, 0) and first.fallback_ids == ["flat"]
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    with np.load(cache) as z:
        assert list(z["ids"]) == first.ids and str(z["arcface_sha256"]) == first.arcface_sha256
    again = compute_prototypes(pairs, cfg, cache, no_face="centre_crop")
    assert (again.computed, again.reused) == (0, 5) and np.array_equal(again.vectors, first.vectors)
    assert again.fallback_ids == ["flat"]
    skipping = compute_prototypes(pairs, cfg, cache)  # the default: a faceless pair is skipped and listed
    assert skipping.skipped == {"flat": "no_face"} and "flat" not in skipping.ids and skipping.computed == 0
    synthetic.write_dataset(tmp_path / "other", 1, seed=9)
    (tmp_path / "other" / "real" / "id_0000.jpg").replace(root / "real" / "id_0002.jpg")  # a changed photo
    changed = compute_prototypes(pairs, cfg, cache)
    assert (changed.computed, changed.reused) == (1, 4)
    k = changed.ids.index("id_0002")
    assert not np.allclose(changed.vectors[k], first.vectors[k])
    other_arcface = tmp_path / "other_arcface.onnx"
    from tests.fixtures.tiny_models import build_recognizer

    build_recognizer(other_arcface, seed=1)
    cfg.arcface_onnx = str(other_arcface)
    rebuilt = compute_prototypes(pairs, cfg, cache)
    assert rebuilt.computed == 5 and rebuilt.arcface_sha256 != first.arcface_sha256
