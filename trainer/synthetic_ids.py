"""Synthetic identities (seed 003): extra photo/sketch pairs of each training identity, made by the product.

Why: an agency has a few hundred to a few thousand pairs. Seed 003 (IDiff-Face) shows that
identity-conditioned synthetic faces can stand in for scarce real ones. The workstation already
generates identity-conditioned faces with IP-Adapter FaceID; here the same generator
(:class:`engine.generate.Reconstructor`) is conditioned on a training identity's ArcFace prototype with
varied prompts (pose, light, age), the teacher ArcFace checks every photo against the prototype, and
only photos whose cosine reaches ``synthetic.min_cosine`` are kept. Each kept photo is sketched with
the existing photo-to-sketch synthesis (:func:`trainer.sketches.sketch_image`); the pair is one more
sample of its source identity's class (its target is that identity's prototype).

Where they live: ``DATASET_ROOT/synthetic/{real,sketch}/<id>~syn<k>.png`` and
``DATASET_ROOT/synthetic/manifest.json``, the data manifest that marks every pair synthetic and records
each attempt (prompt, seed, cosine, kept or why not, file digests, the generator's model digests). The
folder travels with the dataset, so every machine of a distributed run reads the same pairs.

Never in validation or test: only training identities get synthetic pairs, and a run uses only the
pairs whose source identity is in its training split (others are listed, never used).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.faces import encode_png
from engine.fsutil import atomic_write_bytes, atomic_write_text, sha256_file
from trainer.config import SyntheticConfig, TeacherConfig
from trainer.data import Pair
from trainer.sketches import sketch_image

SYNTH_DIR = "synthetic"
MANIFEST_NAME = "manifest.json"
FORMAT = "sketchface.synthetic_pairs/1"
SEP = "~syn"


@dataclass(frozen=True)
class SyntheticPair:
    """One kept synthetic pair: an extra sample of ``source_id``'s class."""

    id: str
    source_id: str
    real: Path
    sketch: Path
    cosine: float
    sketch_sha256: str


@dataclass
class SyntheticResult:
    """What the source made or found for a set of training identities."""

    pairs: list[SyntheticPair]
    attempted: int = 0
    generated: int = 0
    reused: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # id -> why
    outside_train: list[str] = field(default_factory=list)  # kept pairs whose source is not a training identity
    seconds: float = 0.0
    steady_seconds: float = 0.0  # from the first photo's end to the last's: without model loading
    manifest: str = ""

    def summary(self, cfg: SyntheticConfig) -> dict[str, Any]:
        return {"synthetic_pairs": len(self.pairs), "per_identity": cfg.per_identity, "min_cosine": cfg.min_cosine,
                "attempted": self.attempted, "generated": self.generated, "reused": self.reused,
                "rejected": len(self.rejected), "rejected_examples": dict(list(self.rejected.items())[:20]),
                "outside_train": len(self.outside_train), "seconds": round(self.seconds, 3),
                "attempts_per_s": (round(self.generated / self.seconds, 4) if self.seconds > 0 and self.generated
                                else None),
                # Photos (kept or not) per second once the models are loaded: generation + identity check + sketch.
                "steady_attempts_per_s": (round((self.generated - 1) / self.steady_seconds, 4)
                                          if self.steady_seconds > 0 and self.generated > 1 else None),
                "manifest": self.manifest}


def synthetic_root(data_root: str | Path) -> Path:
    return Path(data_root) / SYNTH_DIR


def read_manifest(data_root: str | Path) -> dict[str, Any]:
    """The synthetic data manifest (an empty one when there is none or it cannot be read)."""
    path = synthetic_root(data_root) / MANIFEST_NAME
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "synthetic": True, "entries": []}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        return {"format": FORMAT, "synthetic": True, "entries": []}
    return doc


def _write_manifest(data_root: Path, doc: dict[str, Any]) -> None:
    atomic_write_text(synthetic_root(data_root) / MANIFEST_NAME, json.dumps(doc, indent=1, default=str))


def _seed(photo_seed: int, ident: str, k: int) -> int:
    digest = hashlib.blake2b(f"{photo_seed}/{ident}/{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31)


def prompt_for(cfg: SyntheticConfig, ident: str, k: int) -> tuple[str, int]:
    """The k-th photo's prompt (one pose, light and age drawn for this identity and k) and its seed."""
    seed = _seed(cfg.photo_seed, ident, k)
    rng = np.random.default_rng(seed)
    parts = {name: str(options[int(rng.integers(len(options)))])
             for name, options in (("pose", cfg.poses), ("light", cfg.lights), ("age", cfg.ages))}
    text = cfg.prompt.format(**parts)
    text = re.sub(r"\s*,(\s*,)+", ",", text).strip(" ,")  # an empty part leaves no ", ,"
    return text, seed


def settings_digest(cfg: SyntheticConfig, arcface_sha256: str) -> str:
    """What decides a photo and its cosine (not the bar: it is applied to the recorded cosine)."""
    keep = {k: getattr(cfg, k) for k in ("poses", "lights", "ages", "prompt", "steps", "guidance_scale",
                                          "likeness_strength", "size", "sketch_method", "photo_seed")}
    return hashlib.sha256(json.dumps({**keep, "arcface": arcface_sha256}, sort_keys=True).encode()).hexdigest()


def _proto_sha(vec: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(vec, dtype=np.float32).tobytes()).hexdigest()


def teacher_identity(teacher: TeacherConfig) -> Callable[[np.ndarray], np.ndarray | None]:
    """``BGR -> unit ArcFace vector | None``: the run's own teacher (the ArcFace that made the prototypes)."""
    from trainer.teacher import build_pipeline

    pipeline = build_pipeline(teacher)

    def embed(bgr: np.ndarray) -> np.ndarray | None:
        boxes = pipeline.detect(bgr)
        if not boxes:
            return None
        return np.asarray(pipeline.embed([pipeline.align(bgr, boxes[0])])[0], np.float32)

    return embed


def build_reconstructor(cfg: SyntheticConfig, identity: Callable[[np.ndarray], np.ndarray | None]) -> Any:
    """The workstation's FaceID generator with the teacher as its identity check."""
    from engine.generate.model_set import ModelLocator
    from engine.generate.reconstruct import Reconstructor
    from engine.generate.types import RuntimeOptions

    locator = ModelLocator(cfg.models_dir) if cfg.models_dir else None
    runtime = RuntimeOptions(device=cfg.device, allow_cpu=cfg.allow_cpu, safety_checker=cfg.safety_checker)
    return Reconstructor(models=locator, runtime=runtime, identity=identity, face_crop=None)


def _reusable(entry: dict[str, Any], digest: str, proto_sha: str, bar: float, folder: Path) -> bool:
    if entry.get("settings") != digest or entry.get("prototype_sha256") != proto_sha:
        return False
    cos = entry.get("cosine")
    if entry.get("status") == "kept":
        return (cos is not None and cos >= bar and (folder / entry["photo"]).is_file()
                and (folder / entry["sketch"]).is_file())
    # Rejected before: still rejected when there was no face, or the cosine is still under the bar.
    return entry.get("status") == "no_face" or (cos is not None and cos < bar)


def _kept_pairs(doc: dict[str, Any], folder: Path, bar: float) -> list[SyntheticPair]:
    out = []
    for e in doc["entries"]:
        if e.get("status") == "kept" and e.get("cosine") is not None and e["cosine"] >= bar:
            out.append(SyntheticPair(e["id"], e["source_id"], folder / e["photo"], folder / e["sketch"],
                                     float(e["cosine"]), str(e.get("sketch_sha256", ""))))
    return out


def generate_synthetic(data_root: str | Path, train_pairs: Sequence[Pair], prototypes: dict[str, np.ndarray],
                       cfg: SyntheticConfig, teacher: TeacherConfig, arcface_sha256: str, *,
                       reconstructor: Any = None, generate: bool = True,
                       on_progress: Callable[[int, int], None] | None = None) -> SyntheticResult:
    """Make (or reuse) ``cfg.per_identity`` photos per training identity; keep those ArcFace recognises.

    Args:
        train_pairs: the training identities (only they get synthetic pairs).
        prototypes: id -> unit ArcFace prototype (the conditioning and the cosine's reference).
        arcface_sha256: the teacher ArcFace file's digest (another ArcFace makes every cosine stale).
        reconstructor: a ready :class:`engine.generate.Reconstructor` (default: built from ``cfg``).
        generate: False only reads the manifest; a missing photo is then an error (a distributed run:
            the synthetic folder must be made first, with ``make-synthetic``, and copied to every machine).
    """
    root = Path(data_root)
    folder = synthetic_root(root)
    doc = read_manifest(root)
    digest = settings_digest(cfg, arcface_sha256)
    bar = float(cfg.min_cosine)
    by_key = {(e.get("source_id"), e.get("k")): e for e in doc["entries"]}
    train_ids = [p.id for p in train_pairs]
    wanted = [(i, k) for i in train_ids for k in range(cfg.per_identity)]
    proto_sha = {i: _proto_sha(prototypes[i]) for i in train_ids}
    todo = [(i, k) for i, k in wanted
            if not (by_key.get((i, k)) and _reusable(by_key[(i, k)], digest, proto_sha[i], bar, folder))]
    result = SyntheticResult(pairs=[], attempted=len(wanted), reused=len(wanted) - len(todo),
                             manifest=str(folder / MANIFEST_NAME))
    if todo and not generate:
        raise ConfigError(f"{len(todo)} synthetic photos of training identities are missing or stale in {folder}.",
                          hint="A distributed run does not generate: run 'python -m trainer make-synthetic' with the "
                               "same config first, and copy DATASET_ROOT/synthetic to every machine.")
    start = time.monotonic()
    if todo:
        doc["arcface_sha256"] = arcface_sha256
        rec = reconstructor if reconstructor is not None else build_reconstructor(cfg, teacher_identity(teacher))
        try:
            _generate(rec, todo, folder, root, doc, by_key, result, cfg, digest, proto_sha, prototypes, bar,
                      on_progress)
        finally:
            if reconstructor is None:
                rec.close()  # the diffusion models leave the GPU before training starts
    result.seconds = time.monotonic() - start
    train = set(train_ids)
    kept = _kept_pairs(doc, folder, bar)
    result.pairs = [p for p in kept if p.source_id in train and int(p.id.rsplit(SEP, 1)[1]) < cfg.per_identity]
    result.outside_train = sorted(p.id for p in kept if p.source_id not in train)
    for i, k in wanted:
        e = by_key.get((i, k))
        if e is not None and e.get("status") != "kept":
            result.rejected[e["id"]] = ("no face found" if e["status"] == "no_face"
                                        else f"ArcFace cosine {e['cosine']:.3f} below {bar}")
    return result


def _generate(rec: Any, todo: list[tuple[str, int]], folder: Path, root: Path, doc: dict[str, Any],
              by_key: dict[tuple[Any, Any], dict[str, Any]], result: SyntheticResult, cfg: SyntheticConfig,
              digest: str, proto_sha: dict[str, str], prototypes: dict[str, np.ndarray], bar: float,
              on_progress: Callable[[int, int], None] | None) -> None:
    """Generate, check, sketch and record each (identity, k) of ``todo``; the manifest is saved as it goes."""
    from engine.generate.types import ReconstructionRequest  # the generation stack loads only when used

    (folder / "real").mkdir(parents=True, exist_ok=True)
    (folder / "sketch").mkdir(parents=True, exist_ok=True)
    last_save = first_done = time.monotonic()
    for n, (ident, k) in enumerate(todo, 1):
        prompt, seed = prompt_for(cfg, ident, k)
        request = ReconstructionRequest(embedding=prototypes[ident], prompt=prompt, seeds=(seed,), steps=cfg.steps,
                                        guidance_scale=cfg.guidance_scale, width=cfg.size, height=cfg.size,
                                        likeness_strength=cfg.likeness_strength, mark=False,
                                        sources={"prototype_sha256": proto_sha[ident]})
        cand = rec.reconstruct(request).candidates[0]
        sid = f"{ident}{SEP}{k}"
        entry: dict[str, Any] = {"id": sid, "source_id": ident, "k": k, "synthetic": True, "prompt": prompt,
                                 "seed": seed, "settings": digest, "prototype_sha256": proto_sha[ident],
                                 "cosine": None if cand.identity_score is None else float(cand.identity_score),
                                 "models": cand.provenance.get("models")}
        if cand.identity_score is None:
            entry["status"] = "no_face"
        elif cand.identity_score < bar:
            entry["status"] = "below_bar"
        else:
            rgb = np.asarray(cand.unmarked.convert("RGB"))
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            gray = sketch_image(bgr, cfg.sketch_method)
            photo, sketch = f"real/{sid}.png", f"sketch/{sid}.png"
            atomic_write_bytes(folder / photo, encode_png(bgr))
            atomic_write_bytes(folder / sketch, encode_png(np.repeat(gray[:, :, None], 3, axis=2)))
            entry.update(status="kept", photo=photo, sketch=sketch, photo_sha256=sha256_file(folder / photo),
                         sketch_sha256=sha256_file(folder / sketch))
        by_key[(ident, k)] = entry
        result.generated += 1
        if n == 1:
            first_done = time.monotonic()
        if on_progress is not None:
            on_progress(n, len(todo))
        if time.monotonic() - last_save >= 30.0:  # a killed run keeps what it made
            doc["entries"] = list(by_key.values())
            _write_manifest(root, doc)
            last_save = time.monotonic()
    doc["entries"] = list(by_key.values())
    doc.update(format=FORMAT, synthetic=True, generator="IP-Adapter FaceID (engine.generate.Reconstructor)")
    _write_manifest(root, doc)
    result.steady_seconds = time.monotonic() - first_done


def count_in_manifest(data_root: str | Path, train_ids: Sequence[str], bar: float) -> dict[str, int]:
    """The dataset doctor's counts: kept synthetic pairs usable for these training identities, and the rest."""
    doc = read_manifest(data_root)
    folder = synthetic_root(data_root)
    train = set(train_ids)
    kept = _kept_pairs(doc, folder, bar)
    usable = [p for p in kept if p.source_id in train and p.sketch.is_file()]
    return {"synthetic_pairs": len(usable), "synthetic_outside_train": sum(p.source_id not in train for p in kept),
            "synthetic_rejected": len(doc["entries"]) - len(kept),
            "synthetic_missing_files": sum(1 for p in kept if p.source_id in train and not p.sketch.is_file())}


def make_synthetic(cfg: Any, reporter: Any, reconstructor: Any = None) -> SyntheticResult:
    """``python -m trainer make-synthetic``: the run's own pairing, prototypes and split, then the source.

    The training identities are exactly those a ``train`` run with this config would use (the same
    usable pairs and split), so the pairs made here are the ones it reads.
    """
    import torch

    from trainer.data import pair_dataset, split_identities
    from trainer.runtime import DistInfo
    from trainer.setup import _prototypes, _usable, encoder_config  # here: trainer.setup imports this module

    if cfg.synthetic.per_identity <= 0:
        raise ConfigError("synthetic.per_identity is 0: nothing to make.", hint="Set e.g. synthetic.per_identity=4.")
    if not cfg.data.root:
        raise ConfigError("No dataset: set data.root (a folder with real/ and sketch/).")
    dist = DistInfo(1, 0, 0, torch.device("cpu"))
    pairing = pair_dataset(cfg.data.root)
    reporter.emit("data", **pairing.summary())
    protos = _prototypes(cfg, pairing.pairs, dist, reporter)
    pre = encoder_config(cfg, "0" * 64, {}).preprocess
    pairs, _sketches, _skipped = _usable(cfg, pairing, protos, pre, reporter)
    train_ids, val_ids, test_ids = split_identities([p.id for p in pairs], cfg.data.val_fraction,
                                                    cfg.data.test_fraction, cfg.data.split_seed,
                                                    cfg.data.min_val_ids, cfg.data.min_test_ids)
    reporter.emit("split", train_ids=len(train_ids), val_ids=len(val_ids), test_ids=len(test_ids))
    by_id = {p.id: p for p in pairs}
    vecs = dict(zip(protos.ids, protos.vectors, strict=True))

    def progress(done: int, total: int) -> None:
        reporter.emit("synthetic_progress", done=done, total=total)

    return generate_synthetic(cfg.data.root, [by_id[i] for i in train_ids], {i: vecs[i] for i in train_ids},
                              cfg.synthetic, cfg.teacher, protos.arcface_sha256, reconstructor=reconstructor,
                              on_progress=progress)
