"""Photo-side verification benchmark in the LFW ``pairs.txt`` layout: is the installed ArcFace performing?

Layout (as distributed with LFW): a header line ``FOLDS N`` (``10 300``), then per fold ``N`` same-person
lines ``name n1 n2`` followed by ``N`` different-person lines ``name1 n1 name2 n2``; image ``n`` of
``name`` is ``IMAGES_DIR/name/name_%04d.jpg``. A header with one number is one fold (``pairsDevTest``).

Reported as the published figures are: accuracy with the 10-fold threshold (for each fold, the
threshold that is best on the other nine, applied to it; mean and standard deviation), the ROC over all
pairs, and the true-accept rate at false-accept rates 1e-2, 1e-3 and 1e-4 — each only when there are
enough different-person pairs to measure it (1/FAR of them); otherwise it is reported as not measurable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.arcface import recognizer_sha256
from engine.errors import BadImage
from engine.faces import FacePipeline
from engine.faces.decode import IMAGE_SUFFIXES, load_image
from engine.progress import CancelToken, ProgressCallback, Reporter, check
from engine.validate.cases import ValidationError

FARS = (1e-2, 1e-3, 1e-4)
PUBLISHED = {"buffalo_l (ArcFace R50)": 99.83}  # LFW accuracy in %, the model's published figure


@dataclass(frozen=True)
class Pair:
    """One line of pairs.txt: which fold, same person or not, and the two images as (name, number)."""

    fold: int
    same: bool
    a: tuple[str, int]
    b: tuple[str, int]


def parse_pairs(path: Path | str) -> tuple[int, int, list[Pair]]:
    """Read a pairs file: (folds, pairs per kind per fold, pairs); a :class:`ValidationError` names the bad line."""
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Cannot read the pairs file {path}: {exc}.") from exc
    lines = [x for x in lines if x]
    if not lines or not all(t.isdigit() for t in lines[0]) or len(lines[0]) not in (1, 2):
        raise ValidationError(f"{path} does not start with the LFW header line ('10 300': folds, pairs per kind).")
    folds, per = (1, int(lines[0][0])) if len(lines[0]) == 1 else (int(lines[0][0]), int(lines[0][1]))
    body = lines[1:]
    if folds < 1 or per < 1 or len(body) != folds * 2 * per:
        raise ValidationError(f"{path}: the header announces {folds} fold(s) of {per} same + {per} different "
                              f"pairs ({folds * 2 * per} lines), but there are {len(body)} pair lines.")
    pairs = []
    for i, tokens in enumerate(body):
        fold, pos = divmod(i, 2 * per)
        same = pos < per
        try:
            if same and len(tokens) == 3:
                pairs.append(Pair(fold, True, (tokens[0], int(tokens[1])), (tokens[0], int(tokens[2]))))
                continue
            if not same and len(tokens) == 4:
                pairs.append(Pair(fold, False, (tokens[0], int(tokens[1])), (tokens[2], int(tokens[3]))))
                continue
        except ValueError:
            pass
        kind = "same-person ('name n1 n2')" if same else "different-person ('name1 n1 name2 n2')"
        raise ValidationError(f"{path}, line {i + 2}: expected a {kind} line in fold {fold + 1}, "
                              f"got {' '.join(tokens)!r}.")
    return folds, per, pairs


def image_path(images_dir: Path, name: str, number: int) -> Path:
    """``IMAGES_DIR/name/name_0001.jpg`` (another image extension is accepted)."""
    base = images_dir / name / f"{name}_{number:04d}"
    for suffix in (".jpg", *sorted(IMAGE_SUFFIXES - {".jpg"})):
        if base.with_suffix(suffix).is_file():
            return base.with_suffix(suffix)
    raise ValidationError(f"Image {number} of {name} is missing: {base}.jpg.",
                          hint="IMAGES_DIR holds one folder per person, as LFW is distributed.")


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs (accept when score >= threshold)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    # Accepting the first i pairs: correct = same among them + different among the rest.
    tp = np.concatenate([[0], np.cumsum(y)])
    tn = np.concatenate([np.cumsum((~y)[::-1])[::-1], [0]])
    correct = tp + tn
    i = int(np.argmax(correct))
    if i == 0:
        return float(s[0]) + 1e-6
    if i == len(s):
        return float(s[-1])
    return float((s[i - 1] + s[i]) / 2)


def evaluate(scores: Sequence[float] | np.ndarray, pairs: Sequence[Pair]) -> dict[str, Any]:
    """Fold accuracy, ROC and TAR@FAR of pair scores (cosine; higher = more alike)."""
    sc = np.asarray(scores, dtype=np.float64)
    same = np.asarray([p.same for p in pairs])
    fold = np.asarray([p.fold for p in pairs])
    folds = sorted(set(fold.tolist()))
    accs, ths = [], []
    for f in folds:
        train = fold != f if len(folds) > 1 else np.ones(len(sc), bool)
        th = best_threshold(sc[train], same[train])
        test = fold == f
        accs.append(float(np.mean((sc[test] >= th) == same[test])))
        ths.append(th)
    far, tar, thr = roc(sc, same)
    n_diff = int((~same).sum())
    tar_at: dict[str, float | None] = {}
    for f in FARS:
        ok = far <= f + 1e-12
        tar_at[f"FAR={f:g}"] = float(tar[ok].max()) if n_diff * f >= 1 and ok.any() else None
    # Keep ~400 points spread evenly in log FAR (the low-FAR end is what matters), plus both ends.
    targets = np.geomspace(1.0 / max(n_diff, 1), 1.0, 400)
    keep = np.unique(np.r_[0, np.searchsorted(far, targets, side="right") - 1, len(far) - 1])
    return {"pairs": len(sc), "same": int(same.sum()), "different": n_diff, "folds": len(folds),
            "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)), "fold_accuracy": accs,
            "fold_threshold": ths, "auc": float(np.trapezoid(tar, far)), "tar_at_far": tar_at,
            "not_measurable": [k for k, v in tar_at.items() if v is None],
            "roc": {"far": far[keep].tolist(), "tar": tar[keep].tolist(), "threshold": thr[keep].tolist()}}


def roc(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FAR, TAR, threshold) at every distinct score, from accept-nothing to accept-everything."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    last = np.r_[np.diff(s) != 0, True]  # one point per distinct threshold
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return (np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos], np.r_[np.inf, s[last]])


def eval_pairs(pairs_file: Path | str, images_dir: Path | str, pipeline: Any = None, device: str = "auto",
               progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Embed every image of the pairs with the installed ArcFace and evaluate (see the module docstring)."""
    folds, per, pairs = parse_pairs(pairs_file)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ValidationError(f"No images folder at {images_dir}.")
    if pipeline is None:
        pipeline = FacePipeline.from_models(device=device)
    wanted = sorted({p.a for p in pairs} | {p.b for p in pairs})
    paths = {key: image_path(images_dir, *key) for key in wanted}
    reporter = Reporter(progress, len(wanted))
    vecs: dict[tuple[str, int], np.ndarray] = {}
    no_face: list[str] = []
    for key in wanted:
        check(cancel)
        try:
            bgr = load_image(paths[key].read_bytes())
        except (BadImage, OSError) as exc:
            raise ValidationError(f"Cannot read {paths[key]}: {exc}.") from exc
        vec, aligned = pipeline.embed_unaligned(bgr)
        if not aligned:
            no_face.append(paths[key].name)
        vecs[key] = np.asarray(vec, np.float32)
        reporter.step(1, paths[key].name)
    scores = [float(vecs[p.a] @ vecs[p.b]) for p in pairs]

    out = evaluate(scores, pairs)
    out.update({"pairs_file": str(pairs_file), "images": len(wanted), "header": [folds, per],
                "no_face_detected": len(no_face), "no_face_examples": no_face[:10],
                "arcface_sha256": recognizer_sha256(pipeline), "published_lfw_accuracy_percent": PUBLISHED})
    return out
