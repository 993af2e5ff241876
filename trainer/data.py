"""Training data: photo/sketch pairing by file stem, identity split, and the two-view sketch dataset."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from engine.errors import EngineError
from engine.faces import is_image_name, load_image
from engine.sketch.config import PreprocessConfig
from engine.sketch.preprocess import prepare_gray
from engine.sketch.transforms import AugmentConfig, SketchAugment, gray_tensor, normalize_tensor


class DatasetUnusable(EngineError):
    """Too much of the dataset cannot be used (unreadable images, photos without a face)."""


@dataclass(frozen=True)
class Pair:
    """One identity: its photo and its sketch."""

    id: str
    real: Path
    sketch: Path


@dataclass
class Pairing:
    """Result of pairing ``real/`` with ``sketch/``; everything left out is listed, never dropped silently."""

    pairs: list[Pair]
    unpaired_real: list[str] = field(default_factory=list)
    unpaired_sketch: list[str] = field(default_factory=list)
    duplicate_stems: list[str] = field(default_factory=list)

    def summary(self, limit: int = 20) -> dict[str, object]:
        return {"pairs": len(self.pairs), "unpaired_real": len(self.unpaired_real),
                "unpaired_sketch": len(self.unpaired_sketch), "duplicate_stems": len(self.duplicate_stems),
                "unpaired_real_examples": self.unpaired_real[:limit],
                "unpaired_sketch_examples": self.unpaired_sketch[:limit],
                "duplicate_stem_examples": self.duplicate_stems[:limit]}


def _by_stem(folder: Path) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, Path] = {}
    dups: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not is_image_name(path):
            continue
        if path.stem in found:
            dups.append(path.name)  # a.jpg and a.png: the first in sorted order is used
            continue
        found[path.stem] = path
    return found, dups


def pair_dataset(root: str | Path) -> Pairing:
    """Pair ``root/real/<id>.*`` with ``root/sketch/<id>.*`` (extensions may differ)."""
    from engine.errors import ConfigError

    root = Path(root)
    real_dir, sketch_dir = root / "real", root / "sketch"
    for d in (real_dir, sketch_dir):
        if not d.is_dir():
            raise ConfigError(f"The dataset folder {d} does not exist.",
                              hint="A dataset root holds real/ (photos) and sketch/ (sketches) with matching "
                                   "file names; 'python -m trainer make-sketches' can create sketch/.")
    real, dup_r = _by_stem(real_dir)
    sketch, dup_s = _by_stem(sketch_dir)
    ids = sorted(set(real) & set(sketch))
    return Pairing(
        pairs=[Pair(i, real[i], sketch[i]) for i in ids],
        unpaired_real=sorted(real[s].name for s in set(real) - set(sketch)),
        unpaired_sketch=sorted(sketch[s].name for s in set(sketch) - set(real)),
        duplicate_stems=sorted(dup_r + dup_s),
    )


def load_sketches(pairs: list[Pair], pre: PreprocessConfig) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each pair's sketch prepared as the app prepares a query; unreadable ones listed, never fatal.

    Returns:
        (id -> prepared uint8 sketch, id -> why it could not be used).
    """
    ok: dict[str, np.ndarray] = {}
    bad: dict[str, str] = {}
    for p in pairs:
        try:
            ok[p.id] = prepare_gray(load_image(p.sketch), None, pre)
        except EngineError as exc:  # BadImage: truncated, empty, not an image, blank page
            bad[p.id] = str(exc)
    return ok, bad


def _unit_hash(seed: int, ident: str) -> float:
    return int(hashlib.sha256(f"{seed}:{ident}".encode()).hexdigest(), 16) / float(1 << 256)


def split_by_identity(ids: list[str], val_fraction: float, seed: int = 0, min_val: int = 2) -> tuple[list[str], list[str]]:
    """Deterministic train/val split of identities.

    An identity is held out when a hash of (seed, id) falls below ``val_fraction``: the decision
    depends on that identity alone, so adding identities later never moves an existing one between
    train and val (a validation identity stays unseen as the dataset grows). Small datasets get at
    least ``min_val`` validation identities (the lowest hashes).
    """
    if len(ids) < min_val + 2:
        from engine.errors import ConfigError

        raise ConfigError(f"Only {len(ids)} paired identities: at least {min_val + 2} are needed to train "
                          "and validate.")
    u = {i: _unit_hash(seed, i) for i in ids}
    val = {i for i in ids if u[i] < val_fraction}
    if len(val) < min_val:
        val = set(sorted(ids, key=u.__getitem__)[:min_val])
    if len(ids) - len(val) < 2:
        val = set(sorted(val, key=u.__getitem__)[:len(ids) - 2])
    return [i for i in ids if i not in val], [i for i in ids if i in val]


def split_identities(ids: list[str], val_fraction: float, test_fraction: float, seed: int = 0, min_val: int = 2,
                     min_test: int = 2) -> tuple[list[str], list[str], list[str]]:
    """Deterministic, disjoint train/val/test split of identities.

    Why three: the run picks ``best.pt`` (and student vs EMA) by its validation score, so that score
    is optimistic; the test identities are never looked at until the chosen checkpoint is scored
    once at the end, which gives an honest figure. As in :func:`split_by_identity` each identity's
    place depends on a hash of (seed, id) alone: val is ``u < val_fraction`` (the very identities
    the two-way split holds out), test is the next ``test_fraction`` of the hash range, so a growing
    dataset never moves an identity between splits. Small datasets get at least ``min_val`` and
    ``min_test`` identities (the next hashes); ``test_fraction`` 0 means no test split.
    """
    from engine.errors import ConfigError

    want_test = min_test if test_fraction > 0 else 0
    if len(ids) < min_val + want_test + 2:
        raise ConfigError(f"Only {len(ids)} paired identities: at least {min_val + want_test + 2} are needed to "
                          "train, validate and test.")
    u = {i: _unit_hash(seed, i) for i in ids}
    order = sorted(ids, key=u.__getitem__)
    val = {i for i in ids if u[i] < val_fraction}
    if len(val) < min_val:
        val = set(order[:min_val])
    test = {i for i in ids if i not in val and val_fraction <= u[i] < val_fraction + test_fraction}
    if len(test) < want_test:
        test |= set([i for i in order if i not in val and i not in test][:want_test - len(test)])
    while len(ids) - len(val) - len(test) < 2:  # keep two training identities: shrink the larger held-out set
        bigger = test if len(test) > len(val) else val
        bigger.discard(max(bigger, key=u.__getitem__))
    return ([i for i in ids if i not in val and i not in test], [i for i in ids if i in val],
            [i for i in ids if i in test])


# Separates the flip's random stream from the other augmentations' (see SketchViews.flips).
FLIP_SEED_OFFSET = 104_729


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample's augmentations in one epoch (independent of workers and resume)."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class SketchViews(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    """Each item: (weak view, strong view, class index) of one sketch, normalised for the encoder.

    Args:
        sketches: sketch files, one per class, in class-index order.
        pre: the encoder's preprocessing (face-region crop, size, mean/std).
        weak, strong: augmentation strengths of the teacher's and the student's view.
        seed: run seed; with :meth:`set_epoch` it fixes every random draw.
        cache: keep prepared uint8 sketches in memory.
        hflip_p: chance that a view is mirrored left-right, drawn independently for the weak and the
            strong view (the reference's ``RandomHorizontalFlip(p=0.5)`` in both pipelines). Only the
            sketch is flipped: its target is the photo's ArcFace vector, and ArcFace (trained with flips)
            gives a mirrored face the same identity, so the pair stays consistent.
        labels: each sketch's class index (default: its position, one sketch per class). Synthetic
            pairs (:mod:`trainer.synthetic_ids`) are extra sketches of an existing class.
    """

    def __init__(self, sketches: list[Path], pre: PreprocessConfig, weak: AugmentConfig, strong: AugmentConfig,
                 seed: int = 0, cache: bool = True, prepared: list[np.ndarray] | None = None,
                 hflip_p: float = 0.0, labels: list[int] | None = None) -> None:
        self.sketches = list(sketches)
        self.labels = list(range(len(self.sketches))) if labels is None else list(labels)
        if len(self.labels) != len(self.sketches):
            raise ValueError("SketchViews: one label per sketch")
        self.pre = pre
        self.weak, self.strong = SketchAugment(weak), SketchAugment(strong)
        self.hflip_p = hflip_p
        self.seed = seed
        self.epoch = 0
        if cache and prepared is not None:
            self._cache: list[np.ndarray] | None = list(prepared)
        else:
            self._cache = [self.load(i) for i in range(len(self.sketches))] if cache else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load(self, index: int) -> np.ndarray:
        """The prepared (face-region, resized) uint8 sketch, exactly as the app prepares a query."""
        return prepare_gray(load_image(self.sketches[index]), None, self.pre)

    def __len__(self) -> int:
        return len(self.sketches)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        gray = self._cache[index] if self._cache is not None else self.load(index)
        x = gray_tensor(gray)
        gen = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
        flip_weak, flip_strong = self.flips(index)
        weak = normalize_tensor(self.weak(x.flip(-1) if flip_weak else x, gen), self.pre)
        strong = normalize_tensor(self.strong(x.flip(-1) if flip_strong else x, gen), self.pre)
        return weak, strong, self.labels[index]

    def flips(self, index: int) -> tuple[bool, bool]:
        """Whether the weak and the strong view of ``index`` are mirrored this epoch.

        Drawn from a stream of their own, so turning the flip on or off leaves every other
        augmentation draw of the sample unchanged.
        """
        if self.hflip_p <= 0:
            return False, False
        gen = torch.Generator().manual_seed(sample_seed(self.seed + FLIP_SEED_OFFSET, self.epoch, index))
        u = torch.rand(2, generator=gen)
        return bool(u[0] < self.hflip_p), bool(u[1] < self.hflip_p)


class EpochSampler(Sampler[int]):
    """This rank's shuffled indices for an epoch, optionally skipping the first ones (mid-epoch resume).

    The order is a function of (seed, epoch) only, like ``DistributedSampler`` (used underneath), so
    a resumed run sees exactly the batches an uninterrupted one would have.
    """

    def __init__(self, size: int, world: int, rank: int, seed: int, batch_size: int) -> None:
        from torch.utils.data.distributed import DistributedSampler

        indices = cast(Dataset[int], range(size))  # a sized sequence is all the sampler needs
        self._inner: DistributedSampler[int] = DistributedSampler(indices, num_replicas=world, rank=rank,
                                                                  shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.skip = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self._inner.set_epoch(epoch)
        self.skip = skip_batches * self.batch_size

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._inner)[self.skip:])

    def __len__(self) -> int:
        return max(0, len(self._inner) - self.skip)

    def full_batches(self) -> int:
        """Batches per epoch on this rank (incomplete last batch dropped)."""
        return len(self._inner) // self.batch_size
