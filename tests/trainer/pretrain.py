"""A tiny OpenCLIP checkpoint that has learned something: the stand-in for the LAION-2B ViT-B/16.

The product fine-tunes a *pretrained* CLIP tower; a randomly initialised one under the default
freezing would test a situation no user is in. So the learnability test first pretrains a tiny
open_clip ``CLIP`` (the ViT-B/16 layout: 12 blocks, patch 16, GELU; only width and image size
reduced) on a procedural task of its own: regress the face parameters of *other* procedural
identities from their sketches (a stand-in for what web-scale pretraining gives a real tower: features
that describe shapes). It is saved like an OpenCLIP checkpoint (the whole CLIP state dict, ``visual.*``
and the text tower, as safetensors) and then loaded by the trainer through its normal pretrained path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.trainer import synthetic

# ViT-B-16's tower with width and image size reduced (12 layers and patch 16 kept).
TINY_B16_CFG: dict[str, Any] = {
    "embed_dim": 256,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 64, "layers": 12, "width": 64, "patch_size": 16, "head_width": 32},
}
_TEXT_CFG = {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}


def _params(ident: synthetic.Identity) -> np.ndarray:
    """The identity's parameters as a standardised-ish vector (the pretraining target)."""
    vals = [float(v) for v in dataclasses.astuple(ident)]
    return np.array(vals, dtype=np.float32)


def _batch(rng: np.random.Generator, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from engine.sketch.config import PreprocessConfig
    from engine.sketch.preprocess import prepare_gray
    from engine.sketch.transforms import gray_tensor, normalize_tensor

    pre = PreprocessConfig(input_size=size)
    xs, ys = [], []
    for _ in range(n):
        ident = synthetic.random_identity(rng)
        xs.append(normalize_tensor(gray_tensor(prepare_gray(synthetic.sketch(ident, rng), None, pre)), pre))
        ys.append(_params(ident))
    return torch.stack(xs), torch.from_numpy(np.stack(ys))


def pretrain_tiny_openclip(out: Path, steps: int = 150, batch: int = 64, seed: int = 100) -> Path:
    """Pretrain the tiny CLIP's image tower on parameter regression; write ``out`` (safetensors)."""
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    clip = open_clip.CLIP(embed_dim=TINY_B16_CFG["embed_dim"], vision_cfg=TINY_B16_CFG["vision_cfg"],
                          text_cfg=_TEXT_CFG, quick_gelu=False)
    size = int(TINY_B16_CFG["vision_cfg"]["image_size"])
    rng = np.random.default_rng(seed)
    x_all, y_all = _batch(rng, 1024, size)  # identities of their own (seed 100), never the test's
    mean, std = y_all.mean(0), y_all.std(0).clamp_min(1e-3)
    y_all = (y_all - mean) / std
    probe = torch.nn.Linear(TINY_B16_CFG["embed_dim"], y_all.shape[1])
    opt = torch.optim.AdamW([*clip.visual.parameters(), *probe.parameters()], lr=1e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    clip.visual.train()
    for step in range(steps):
        idx = torch.randint(0, x_all.shape[0], (batch,), generator=gen)
        x = x_all[idx]
        if step % 2:  # a little shift so the features do not depend on exact pixel positions
            x = torch.roll(x, shifts=(int(torch.randint(-3, 4, (1,), generator=gen)),) * 2, dims=(2, 3))
        loss = torch.nn.functional.mse_loss(probe(clip.visual(x)), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in clip.state_dict().items()}, str(out))
    return out
