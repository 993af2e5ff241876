"""The run's one look at its test split: the chosen checkpoint beside a linear probe and ArcFace-on-sketch.

Why: ``best.pt`` is the best of many scores (every evaluation, student and EMA) on the validation
identities, so its validation figure is optimistic. The test identities took part in no choice; they
are scored once, here, for the checkpoint already chosen, and beside two cheap alternatives computed
in the same run on the same identities:

- a linear probe (:mod:`trainer.probe`): ridge regression from the frozen pretrained tower's features
  to the ArcFace prototypes; if the trained encoder does not beat it, fine-tuning has not shown it
  helped, and the report says so;
- ArcFace on the sketch itself (the teacher's own pipeline on the sketch image): what searching with
  the sketch as if it were a photo gives, with no training at all.

Every rate carries a 95 % Wilson interval over the test queries.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import EngineError
from engine.sketch.checkpoint import save_encoder
from engine.sketch.config import EncoderConfig
from engine.sketch.model import PretrainedSource, SketchEncoder, build_encoder, load_pretrained_visual
from trainer.config import TrainConfig
from trainer.data import Pair
from trainer.evaluate import held_out_report
from trainer.probe import LinearProbe, fit_ridge
from trainer.runtime import autocast
from trainer.teacher import build_pipeline, embed_photo


@torch.no_grad()
def embed_inputs(model: SketchEncoder, inputs: torch.Tensor, device: torch.device, amp: torch.dtype | None,
                 batch: int) -> np.ndarray:
    """Unit embeddings of prepared inputs (eval mode, no augmentation)."""
    model.eval()
    outs = []
    for start in range(0, inputs.shape[0], batch):
        with autocast(device, amp):
            outs.append(model(inputs[start:start + batch].to(device)).float().cpu())
    return torch.cat(outs).numpy()


def arcface_on_sketches(pairs: list[Pair], cfg: TrainConfig) -> np.ndarray:
    """The teacher's ArcFace of each sketch image (aligned on a detected face, else centre-cropped)."""
    pipeline = build_pipeline(cfg.teacher)
    crops = []
    for p in pairs:
        try:
            crops.append(embed_photo(pipeline, p.sketch)[0])
        except EngineError:  # unreadable: the run already loaded it once, so this is rare; a blank crop
            crops.append(np.full((112, 112, 3), 255, np.uint8))
    vecs = np.asarray(pipeline.embed(crops), np.float64)
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def _line(name: str, rep: dict[str, Any]) -> str:
    lo, hi = rep["recall@1_ci95"]
    return f"{name} R@1 {rep['recall@1']:.3f} [{lo:.3f}, {hi:.3f}]"


def compare(trained: dict[str, Any], probe: dict[str, Any] | None, baseline: dict[str, Any] | None) -> dict[str, Any]:
    """The side-by-side verdict: whether the trained encoder beats each alternative on test R@1."""
    parts = [_line("trained encoder", trained)]
    out: dict[str, Any] = {}
    for key, name, rep in (("probe", "linear probe", probe), ("baseline", "ArcFace-on-sketch baseline", baseline)):
        if rep is None:
            continue
        parts.append(_line(name, rep))
        beats = float(trained["recall@1"]) > float(rep["recall@1"])
        clear = float(trained["recall@1_ci95"][0]) > float(rep["recall@1_ci95"][1])
        out[f"beats_{key}"] = beats
        out[f"beats_{key}_beyond_ci"] = clear
    out["summary"] = " vs ".join(parts)
    if probe is not None and not out["beats_probe"]:
        out["verdict"] = ("The trained encoder does NOT beat the linear probe on the test split: on this data the "
                          "fine-tuning has not shown that it helps. The probe is exported beside it (probe/) and "
                          "can be installed instead.")
    elif probe is not None and not out["beats_probe_beyond_ci"]:
        out["verdict"] = ("The trained encoder scores above the linear probe on the test split, but within the "
                          "95 % intervals: the difference may be chance.")
    elif probe is not None:
        out["verdict"] = "The trained encoder beats the linear probe on the test split beyond the 95 % intervals."
    else:
        out["verdict"] = "No linear probe (the tower has no pretrained weights): only the baseline is compared."
    return out


def export_probe(probe: LinearProbe, enc_cfg: EncoderConfig, pretrained: PretrainedSource, out_dir: Path,
                 metrics: dict[str, Any]) -> Path:
    """Write the probe as a sketch encoder: the pretrained tower (frozen) + the ridge map as a linear head."""
    cfg = EncoderConfig.from_dict({**enc_cfg.to_dict(), "head_hidden": 0})
    cfg = dataclasses.replace(cfg, weights="linear_probe", metrics=metrics,
                              training={**cfg.training, "linear_probe": probe.record()})
    model = build_encoder(cfg)
    load_pretrained_visual(model, pretrained)
    model.load_state_dict({**model.state_dict(), **probe.head_state()}, strict=True)
    return save_encoder(out_dir, model.state_dict(), cfg)


def final_test(cfg: TrainConfig, *, state: dict[str, Any], test_ids: list[str], test_inputs: torch.Tensor,
               all_ids: list[str], all_protos: np.ndarray, pairs: dict[str, Pair],
               probe_features: dict[str, np.ndarray], train_ids: list[str], val_ids: list[str],
               device: torch.device, amp: torch.dtype | None) -> tuple[dict[str, Any], LinearProbe | None]:
    """Score the chosen checkpoint (``state``: best.pt, else last.pt) and the two alternatives on the test split."""
    enc = EncoderConfig.from_dict(state["encoder_config"])
    weights = str(state.get("best_weights") or "ema") if cfg.run.weights == "best" else cfg.run.weights
    model = build_encoder(enc).to(device)
    model.load_state_dict(state["ema"] if weights == "ema" else state["model"])
    neg, seed = cfg.eval.val_negatives_per_query, cfg.run.seed
    emb = embed_inputs(model, test_inputs, device, amp, cfg.eval.batch_size)
    trained = {**held_out_report(emb, test_ids, all_ids, all_protos, neg, seed), "weights": weights,
               "step": int(state.get("step", 0)), "selected_on": "val"}
    pos = {i: k for k, i in enumerate(all_ids)}
    probe: LinearProbe | None = None
    probe_rep: dict[str, Any] | None = None
    if probe_features:
        y = {name: all_protos[[pos[i] for i in ids]].astype(np.float64)
             for name, ids in (("train", train_ids), ("val", val_ids))}
        probe = fit_ridge(probe_features["train"], y["train"], probe_features["val"], y["val"])
        probe_rep = {**held_out_report(probe.embed(probe_features["test"]), test_ids, all_ids, all_protos, neg, seed),
                     **probe.record()}
    base = arcface_on_sketches([pairs[i] for i in test_ids], cfg)
    baseline = held_out_report(base, test_ids, all_ids, all_protos, neg, seed)
    report = {"trained": trained, "linear_probe": probe_rep, "arcface_on_sketch": baseline,
              **compare(trained, probe_rep, baseline)}
    return report, probe
