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


def _views(rng: np.random.Generator, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently drawn sketches of each of ``n`` new identities, prepared as the product does."""
    from engine.sketch.config import PreprocessConfig
    from engine.sketch.preprocess import prepare_gray
    from engine.sketch.transforms import gray_tensor, normalize_tensor

    pre = PreprocessConfig(input_size=size)

    def one(ident: synthetic.Identity) -> torch.Tensor:
        return normalize_tensor(gray_tensor(prepare_gray(synthetic.sketch(ident, rng), None, pre)), pre)

    idents = [synthetic.random_identity(rng) for _ in range(n)]
    return torch.stack([one(i) for i in idents]), torch.stack([one(i) for i in idents])


def pretrain_tiny_openclip(out: Path, steps: int = 150, batch: int = 48, identities: int = 384,
                           seed: int = 100) -> Path:
    """Pretrain the tiny CLIP's image tower contrastively (two sketches of one identity match); write ``out``.

    Contrastive like CLIP itself (InfoNCE, temperature 0.1, symmetric), so the features are spread
    over the sphere as a real CLIP tower's are, not collapsed onto one direction.
    """
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    clip = open_clip.CLIP(embed_dim=TINY_B16_CFG["embed_dim"], vision_cfg=TINY_B16_CFG["vision_cfg"],
                          text_cfg=_TEXT_CFG, quick_gelu=False)
    size = int(TINY_B16_CFG["vision_cfg"]["image_size"])
    view_a, view_b = _views(np.random.default_rng(seed), identities, size)  # identities of their own
    opt = torch.optim.AdamW(clip.visual.parameters(), lr=1e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    clip.visual.train()
    for _ in range(steps):
        idx = torch.randperm(identities, generator=gen)[:batch]
        z = torch.nn.functional.normalize(clip.visual(torch.cat([view_a[idx], view_b[idx]])), dim=-1)
        logits = z[:batch] @ z[batch:].t() / 0.1
        target = torch.arange(batch)
        loss = 0.5 * (torch.nn.functional.cross_entropy(logits, target)
                      + torch.nn.functional.cross_entropy(logits.t(), target))
        opt.zero_grad()
        loss.backward()
        opt.step()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in clip.state_dict().items()}, str(out))
    return out


def arcface_like_recognizer(src: Path, dst: Path, detector: Path, photos: int = 240, components: int = 24,
                            seed: int = 200) -> Path:
    """The tiny ArcFace stand-in, given ArcFace's geometry: unrelated faces near-orthogonal.

    The stand-in projects pooled pixels at random; every face shares one layout, so two random
    identities had a cosine of ~0.5 and nearest neighbours of ~0.9 (real ArcFace: ~0, and nearest
    neighbours far apart), which no margin-0.3 softmax can separate. Here its input is centred on the
    population's mean aligned face and its projection replaced by a PCA whitening of the pooled
    pixels (``components`` directions, fitted on other procedural photos) followed by a random
    orthonormal map to 512-D: identities then spread over the sphere as ArcFace's do.
    """
    import cv2
    import onnx
    from onnx import helper, numpy_helper

    from engine.faces import FacePipeline

    pipe = FacePipeline(detector, src, device="cpu")
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(photos):
        bgr = np.ascontiguousarray(synthetic.photo(synthetic.random_identity(rng), rng)[:, :, ::-1])
        boxes = pipe.detect(bgr)
        if boxes:
            crops.append(pipe.align(bgr, boxes[0]))
    # The recognizer's own input transform (insightface ArcFaceONNX: (x - 127.5) / 127.5, BGR -> RGB).
    blob = cv2.dnn.blobFromImages(crops, 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
    mean_face = blob.mean(axis=0, keepdims=True).astype(np.float32)
    # What the graph computes before its projection: 8x8 average pool, flatten, per-sample centring.
    pooled = (blob - mean_face).reshape(len(crops), 3, 14, 8, 14, 8).mean(axis=(3, 5)).reshape(len(crops), -1)
    pooled -= pooled.mean(axis=1, keepdims=True)
    _, sv, vt = np.linalg.svd(pooled - pooled.mean(axis=0), full_matrices=False)
    whiten = (vt[:components].T / sv[:components]) * np.sqrt(len(crops))
    rot, _ = np.linalg.qr(rng.standard_normal((512, components)))
    proj = (whiten @ rot.T).astype(np.float32)
    model = onnx.load(str(src))
    graph = model.graph
    inp = graph.input[0].name
    for init in graph.initializer:
        if init.name == "proj":
            init.CopyFrom(numpy_helper.from_array(proj, "proj"))
    graph.initializer.append(numpy_helper.from_array(mean_face, "population_mean_face"))
    for node in graph.node:
        node.input[:] = ["input_centred" if name == inp else name for name in node.input]
    graph.node.insert(0, helper.make_node("Sub", [inp, "population_mean_face"], ["input_centred"],
                                          name="population_centre"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst
