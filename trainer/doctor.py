"""``python -m trainer check DATASET_ROOT``: what a training run would find in a dataset, before it starts.

Why: a run takes hours; an agency's folder of 500-5,000 pairs usually holds a few unpaired files,
unreadable scans, photos without a visible face, thumbnails, or the same photo filed under two
identities (which teaches the encoder that two people are one). The doctor lists all of it, and the
schedule in steps this dataset gives, without a GPU and without training anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.faces import load_image
from trainer.config import TrainConfig
from trainer.data import Pair, pair_dataset, split_identities
from trainer.plan import plan_steps, plan_warnings
from trainer.synthetic_ids import count_in_manifest

NEAR_DUP_CORR = 0.995  # correlation of 32x32 thumbnails at or above which two photos are near-duplicates
EXAMPLES = 50


def thumbnail(bgr: np.ndarray, side: int = 32) -> np.ndarray:
    """A zero-mean, unit-length 32x32 grayscale thumbnail: robust to resizing, re-compression, brightness.

    Why not a 64-bit hash: faces share one layout, so 8x9 difference hashes of different people
    collide (on procedural faces nearly all pairs do). Thumbnail correlation separates them: a
    re-saved copy correlates > 0.999, different procedural faces < 0.99 (real ones far lower).
    """
    import cv2

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    v = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    v -= v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)


def near_duplicates(thumbs: dict[str, np.ndarray], min_corr: float = NEAR_DUP_CORR) -> list[tuple[str, str, float]]:
    """Pairs of different identities whose photo thumbnails correlate at least ``min_corr``."""
    ids = list(thumbs)
    if len(ids) < 2:
        return []
    m = np.stack([thumbs[i] for i in ids])
    out = []
    for start in range(0, len(ids), 512):
        corr = m[start:start + 512] @ m.T
        for a, b in zip(*np.nonzero(corr >= min_corr), strict=True):
            a_abs = int(a) + start
            if a_abs < int(b):
                out.append((ids[a_abs], ids[int(b)], round(float(corr[a, b]), 4)))
    return out


def _face_checker(cfg: TrainConfig) -> Any:
    """A detector-only callable (image -> face found), or None when the detector is not installed."""
    from engine.faces import FacePipeline
    from trainer.teacher import arcface_path, detector_path

    try:
        pipe = FacePipeline(detector_path(cfg.teacher), arcface_path(cfg.teacher), device=cfg.teacher.device,
                            det_size=cfg.teacher.det_size, det_thresh=cfg.teacher.det_thresh)
    except EngineError:
        return None
    return lambda bgr: bool(pipe.detect(bgr))


def _cached_faces(cfg: TrainConfig, pairs: list[Pair]) -> dict[str, bool]:
    """Face found / not, from the prototype cache where the photo is unchanged (no detector run)."""
    from engine.fsutil import sha256_file
    from trainer.teacher import CACHE_NAME, NO_FACE, arcface_path, read_cache

    cache = Path(cfg.data.prototype_cache) if cfg.data.prototype_cache else Path(cfg.data.root) / CACHE_NAME
    try:
        entries = read_cache(cache, sha256_file(arcface_path(cfg.teacher)))
    except (EngineError, OSError):
        return {}
    out = {}
    for p in pairs:
        e = entries.get(p.id)
        if e is not None and e[0] == sha256_file(p.real):
            out[p.id] = e[2] != NO_FACE
    return out


def check_dataset(cfg: TrainConfig, faces: bool = True) -> dict[str, Any]:
    """The dataset report (see the module doc); counts under the documented keys, examples beside them."""
    pairing = pair_dataset(cfg.data.root)
    min_side = cfg.data.min_side
    unreadable: list[dict[str, str]] = []
    tiny: list[dict[str, Any]] = []
    thumbs: dict[str, np.ndarray] = {}
    photos: dict[str, np.ndarray] = {}
    bad_ids: set[str] = set()
    for p in pairing.pairs:
        for kind, path in (("photo", p.real), ("sketch", p.sketch)):
            try:
                img = load_image(path)
            except EngineError as exc:
                unreadable.append({"id": p.id, "file": f"{path.parent.name}/{path.name}", "reason": str(exc)})
                bad_ids.add(p.id)
                continue
            h, w = img.shape[:2]
            if min(h, w) < min_side:
                tiny.append({"id": p.id, "file": f"{path.parent.name}/{path.name}", "size": [w, h]})
            if kind == "photo":
                thumbs[p.id] = thumbnail(img)
                if faces:
                    photos[p.id] = img
    no_face: list[str] | None = None
    notes: list[str] = []
    if faces:
        known = _cached_faces(cfg, [p for p in pairing.pairs if p.id in photos])
        todo = [i for i in photos if i not in known]
        checker = _face_checker(cfg) if todo else None
        if todo and checker is None:
            notes.append("The face detector is not installed: photos without a face were not checked.")
        else:
            for i in todo:
                known[i] = checker(photos[i]) if checker is not None else True
            no_face = sorted(i for i, found in known.items() if not found)
    photos.clear()
    dups = near_duplicates(thumbs)
    skipped = bad_ids | set(no_face or []) if cfg.data.no_face == "skip" else set(bad_ids)
    usable = [p.id for p in pairing.pairs if p.id not in skipped]
    share = len(skipped) / max(1, len(pairing.pairs))
    report: dict[str, Any] = {
        "root": str(cfg.data.root),
        "pairs": len(pairing.pairs),
        "unpaired": len(pairing.unpaired_real) + len(pairing.unpaired_sketch),
        "unpaired_real": pairing.unpaired_real[:EXAMPLES], "unpaired_sketch": pairing.unpaired_sketch[:EXAMPLES],
        "duplicate_stems": len(pairing.duplicate_stems), "duplicate_stem_files": pairing.duplicate_stems[:EXAMPLES],
        "unreadable": len(unreadable), "unreadable_files": unreadable[:EXAMPLES],
        "no_face": None if no_face is None else len(no_face), "no_face_ids": (no_face or [])[:EXAMPLES],
        "tiny": len(tiny), "tiny_files": tiny[:EXAMPLES], "min_side": min_side,
        "near_duplicates": len(dups),
        "near_duplicate_pairs": [{"a": a, "b": b, "correlation": c} for a, b, c in dups[:EXAMPLES]],
        "usable_pairs": len(usable), "skipped_share": round(share, 4),
        "max_skipped_fraction": cfg.data.max_skipped_fraction,
    }
    try:
        train_ids, val_ids, test_ids = split_identities(usable, cfg.data.val_fraction, cfg.data.test_fraction,
                                                        cfg.data.split_seed, cfg.data.min_val_ids,
                                                        cfg.data.min_test_ids)
    except EngineError as exc:
        notes.append(str(exc))
        train_ids, val_ids, test_ids = [], [], []
    # Synthetic pairs (trainer.synthetic_ids): counted apart, marked synthetic, only for training identities.
    synth = count_in_manifest(cfg.data.root, train_ids, cfg.synthetic.min_cosine)
    report.update(synth)
    if synth["synthetic_missing_files"]:
        notes.append(f"{synth['synthetic_missing_files']} synthetic pairs in the manifest have no sketch file: "
                     "'python -m trainer make-synthetic' makes them again.")
    used = synth["synthetic_pairs"] if cfg.synthetic.per_identity > 0 else 0
    report["synthetic_used_by_run"] = cfg.synthetic.per_identity > 0  # off (0): a run would ignore them
    plan = plan_steps(cfg, len(train_ids) + used, classes=len(train_ids))
    report.update({"train_ids": len(train_ids), "val_ids": len(val_ids), "test_ids": len(test_ids),
                   "steps_per_epoch": plan.steps_per_epoch,
                   "steps_total": plan.total_steps, "warmup_steps": plan.warmup, "unfreeze_step": plan.unfreeze_step,
                   "margin_ramp_steps": plan.margin_ramp, "unfreezes": plan.unfreezes(),
                   "batch_size": cfg.optim.batch_size, "accum_steps": cfg.optim.accum_steps,
                   "epochs": cfg.optim.epochs})
    if train_ids and len(train_ids) < cfg.optim.batch_size:
        notes.append(f"{len(train_ids)} training identities are fewer than one batch ({cfg.optim.batch_size}).")
    if train_ids:
        notes.extend(plan_warnings(plan, cfg))
    if share > cfg.data.max_skipped_fraction:
        notes.append(f"{share:.0%} of the pairs are unusable: training would stop (limit "
                     f"{cfg.data.max_skipped_fraction:.0%}).")
    if dups:
        notes.append(f"{len(dups)} pairs of identities have near-identical photos: the same person filed twice, "
                     "or a placeholder image; the encoder would learn they are one.")
    report["warnings"] = notes
    report["verdict"] = ("unusable" if share > cfg.data.max_skipped_fraction or not train_ids
                         else "warnings" if (notes or unreadable or tiny or skipped or report["unpaired"]) else "ok")
    return report


def format_report(r: dict[str, Any]) -> str:
    """The report for people (what ``check`` prints without --json)."""
    lines = [f"Dataset {r['root']}",
             f"  pairs                {r['pairs']}  (usable {r['usable_pairs']}, skipped share "
             f"{r['skipped_share']:.1%}, limit {r['max_skipped_fraction']:.0%})",
             f"  unpaired files       {r['unpaired']}  {', '.join((r['unpaired_real'] + r['unpaired_sketch'])[:5])}",
             f"  duplicate stems      {r['duplicate_stems']}",
             f"  unreadable images    {r['unreadable']}  "
             + ", ".join(u["file"] for u in r["unreadable_files"][:5]),
             f"  photos without face  {'not checked' if r['no_face'] is None else r['no_face']}  "
             + ", ".join(r["no_face_ids"][:5]),
             f"  tiny images (<{r['min_side']} px) {r['tiny']}",
             f"  near-duplicate photos across identities {r['near_duplicates']}  "
             + ", ".join(f"{d['a']}~{d['b']}" for d in r["near_duplicate_pairs"][:3]),
             f"  split                {r['train_ids']} train / {r['val_ids']} val / {r.get('test_ids', 0)} test "
             "identities",
             f"  synthetic pairs      {r.get('synthetic_pairs', 0)}  (marked synthetic, training identities only; "
             f"rejected {r.get('synthetic_rejected', 0)}, source outside train {r.get('synthetic_outside_train', 0)})",
             f"  schedule             {r['steps_per_epoch']} steps/epoch x {r['epochs']} epochs = "
             f"{r['steps_total']} steps; warm-up {r['warmup_steps']}, unfreeze at step {r['unfreeze_step']}, "
             f"margin ramp {r['margin_ramp_steps']}",
             f"  verdict              {r['verdict']}"]
    lines += [f"  ! {note}" for note in r["warnings"]]
    return "\n".join(lines)
