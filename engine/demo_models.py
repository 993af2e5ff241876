"""Tiny models in the real file formats, built offline: the demo's models and the tests' stand-ins.

Why in the engine: ``sketchface demo`` (and the first-run guide's "Try with demo data") installs them
on a workstation that has no model files yet, and the packaged app ships no ``tests`` folder. They
have RANDOM weights: scores computed with them mean nothing, and everything built with them is
labelled DEMO.

- :func:`build_detector`: a 9-output SCRFD-signature detector (strides 8/16/32, two anchors,
  keypoints) that insightface's ``model_zoo`` routes to its SCRFD class. It reports up to two faces at
  fixed places of its 640x640 input (a large one centred, a smaller one upper-left) whenever the
  image there is textured: a flat image (a blank wall, an empty page) has no face.
- :func:`build_recognizer`: an ArcFace-signature recognizer (N x 3 x 112 x 112 -> N x 512): a fixed
  random projection of the mean-centred, downsampled crop, so different faces get different
  embeddings and the same face the same one.
- :func:`build_realistic_recognizer`: an IResNet-50-sized recognizer (random weights) whose cost
  matches the real model, for benchmarks.
- :func:`build_sketch_encoder`: a 2-block, 64-wide open_clip ViT at 64 px in the real checkpoint
  format (+ ONNX export), recorded as trained against the recognizer beside it.
- :func:`build`: the set in the model manifest's layout (``OUT/<model id>/<file>``), importable with
  ``sketchface models import OUT``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.fsutil import sha256_file

OPSET = 13
IR_VERSION = 8
DET_SIZE = 640
# ArcFace 5-point template for a 112x112 crop (eyes, nose, mouth corners).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
# (stride, grid row, grid col, half size in px) of the faces the tiny detector can report.
TINY_FACES = ((32, 10, 10, 96), (16, 10, 10, 48))
_STRIDES = (8, 16, 32)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any], name: str) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sketchface-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _const(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(arr), name)


def build_detector(path: Path) -> Path:
    """Write the tiny SCRFD-signature detector to ``path``."""
    nodes: list[Any] = []
    inits: list[Any] = []
    outputs: dict[str, list[Any]] = {"score": [], "bbox": [], "kps": []}
    for stride in _STRIDES:
        cells = (DET_SIZE // stride) ** 2 * 2
        bias = np.full((cells, 1), -1.0, dtype=np.float32)  # "no face" everywhere...
        gate = np.zeros((cells, 1), dtype=np.float32)
        bbox = np.zeros((cells, 4), dtype=np.float32)
        kps = np.zeros((cells, 10), dtype=np.float32)
        gate_inputs = []
        for f_stride, row, col, half in TINY_FACES:
            if f_stride != stride:
                continue
            idx = (row * (DET_SIZE // stride) + col) * 2
            cx, cy = col * stride, row * stride
            bias[idx] = 0.0
            gate[idx] = 1.0
            bbox[idx] = half / stride
            pts = (ARCFACE_TEMPLATE / 112.0) * (2 * half) + np.array([cx - half, cy - half], dtype=np.float32)
            kps[idx] = ((pts - np.array([cx, cy], dtype=np.float32)) / stride).reshape(-1)
            # ...except where a face sits and the image there is textured (std of the patch).
            x0, x1 = cx - half, cx + half
            tag = f"s{stride}"
            inits += [_const(f"{tag}_starts", np.array([x0, x0], np.int64)),
                      _const(f"{tag}_ends", np.array([x1, x1], np.int64)),
                      _const(f"{tag}_axes", np.array([2, 3], np.int64))]
            nodes += [
                helper.make_node("Slice", ["input.1", f"{tag}_starts", f"{tag}_ends", f"{tag}_axes"],
                                 [f"{tag}_patch"], name=f"patch_{tag}"),
                helper.make_node("ReduceMean", [f"{tag}_patch"], [f"{tag}_m"], keepdims=0, name=f"m_{tag}"),
                helper.make_node("Pow", [f"{tag}_patch", "two"], [f"{tag}_sq"], name=f"sq_{tag}"),
                helper.make_node("ReduceMean", [f"{tag}_sq"], [f"{tag}_m2"], keepdims=0, name=f"m2_{tag}"),
                helper.make_node("Pow", [f"{tag}_m", "two"], [f"{tag}_msq"], name=f"msq_{tag}"),
                helper.make_node("Sub", [f"{tag}_m2", f"{tag}_msq"], [f"{tag}_var"], name=f"var_{tag}"),
            ]
            gate_inputs.append(f"{tag}_var")
        inits += [_const(f"bias{stride}", bias), _const(f"bbox{stride}", bbox), _const(f"kps{stride}", kps)]
        if gate_inputs:
            inits.append(_const(f"gate{stride}", gate))
            # logit = bias + gate * 40 * (var - 0.002): a textured patch (var of the normalised input
            # well above 0.002, i.e. pixel std above ~6/255) gives a confident face.
            nodes += [
                helper.make_node("Sub", [gate_inputs[0], "var_thresh"], [f"g{stride}_d"], name=f"gd{stride}"),
                helper.make_node("Mul", [f"g{stride}_d", "gain"], [f"g{stride}_s"], name=f"gs{stride}"),
                helper.make_node("Mul", [f"gate{stride}", f"g{stride}_s"], [f"g{stride}_l"], name=f"gl{stride}"),
                helper.make_node("Add", [f"bias{stride}", f"g{stride}_l"], [f"logit{stride}"], name=f"lg{stride}"),
                helper.make_node("Mul", [f"logit{stride}", "sharp"], [f"logits{stride}"], name=f"ls{stride}"),
                helper.make_node("Sigmoid", [f"logits{stride}"], [f"score_{stride}"], name=f"sig{stride}"),
            ]
        else:
            nodes.append(helper.make_node("Mul", [f"bias{stride}", "sharp"], [f"logits{stride}"], name=f"ls{stride}"))
            nodes.append(helper.make_node("Sigmoid", [f"logits{stride}"], [f"score_{stride}"], name=f"sig{stride}"))
        nodes.append(helper.make_node("Identity", [f"bbox{stride}"], [f"bbox_{stride}"], name=f"bb{stride}"))
        nodes.append(helper.make_node("Identity", [f"kps{stride}"], [f"kps_{stride}"], name=f"kp{stride}"))
        for key, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            outputs[key].append(helper.make_tensor_value_info(f"{key}_{stride}", TensorProto.FLOAT, [cells, width]))
    inits += [_const("two", np.array(2.0, np.float32)), _const("var_thresh", np.array(0.002, np.float32)),
              _const("gain", np.array(2000.0, np.float32)), _const("sharp", np.array(20.0, np.float32))]
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, DET_SIZE, DET_SIZE])
    model = _model(nodes, [inp], outputs["score"] + outputs["bbox"] + outputs["kps"], inits, "tiny_scrfd")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_recognizer(path: Path, seed: int = 0) -> Path:
    """Write the tiny ArcFace-signature recognizer to ``path``."""
    rng = np.random.default_rng(seed)
    feat = 3 * 14 * 14
    proj = (rng.standard_normal((feat, 512)) / np.sqrt(feat)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8], name="pool"),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1, name="center_mean"),
        helper.make_node("Sub", ["flat", "mean"], ["centred"], name="center"),
        helper.make_node("MatMul", ["centred", "proj"], ["683"], name="project"),
    ]
    inits = [_const("flat_shape", np.array([-1, feat], np.int64)), _const("proj", proj)]
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])
    out = helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", 512])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(_model(nodes, [inp], [out], inits, "tiny_arcface"), str(path))
    return path


def build_realistic_recognizer(path: Path, seed: int = 0) -> Path:
    """Write an IResNet-50-shaped recognizer (random weights): the real model's cost, for benchmarks.

    Layout as insightface's iresnet50: stem 3x3/64, stages of [3, 4, 14, 3] blocks with 64/128/256/512
    channels (first block of each stage strided), BN folded into convs, PReLU, then a 512*7*7 -> 512 FC.
    """
    rng = np.random.default_rng(seed)
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def conv(x: str, cin: int, cout: int, k: int, s: int) -> str:
        counter[0] += 1
        n = f"c{counter[0]}"
        w = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(1.0 / (cin * k * k))).astype(np.float32)
        inits.extend([_const(f"{n}_w", w), _const(f"{n}_b", np.zeros(cout, np.float32))])
        nodes.append(helper.make_node("Conv", [x, f"{n}_w", f"{n}_b"], [n], kernel_shape=[k, k],
                                      strides=[s, s], pads=[k // 2] * 4, name=f"conv{counter[0]}"))
        return n

    def prelu(x: str, c: int) -> str:
        counter[0] += 1
        n = f"p{counter[0]}"
        inits.append(_const(f"{n}_a", np.full((c, 1, 1), 0.25, np.float32)))
        nodes.append(helper.make_node("PRelu", [x, f"{n}_a"], [n], name=f"prelu{counter[0]}"))
        return n

    x = prelu(conv("input.1", 3, 64, 3, 1), 64)
    cin = 64
    for cout, blocks in ((64, 3), (128, 4), (256, 14), (512, 3)):
        for b in range(blocks):
            stride = 2 if b == 0 else 1
            y = prelu(conv(x, cin, cout, 3, 1), cout)
            y = conv(y, cout, cout, 3, stride)
            short = conv(x, cin, cout, 1, stride) if b == 0 else x
            counter[0] += 1
            add = f"a{counter[0]}"
            nodes.append(helper.make_node("Add", [y, short], [add], name=f"add{counter[0]}"))
            x, cin = add, cout
    inits.append(_const("flat_shape", np.array([-1, 512 * 7 * 7], np.int64)))
    inits.append(_const("fc_w", (rng.standard_normal((512 * 7 * 7, 512)) / 160.0).astype(np.float32)))
    nodes.append(helper.make_node("Reshape", [x, "flat_shape"], ["flat"], name="flatten"))
    nodes.append(helper.make_node("MatMul", ["flat", "fc_w"], ["fc1"], name="fc"))
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])
    out = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", 512])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(_model(nodes, [inp], [out], inits, "iresnet50_random"), str(path))
    return path


# A custom open_clip config (no registry entry needed): ~0.15 M parameters, 16 patches of 16 px.
TINY_MODEL_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
}
TINY_INPUT = 64
TINY_HEAD_HIDDEN = 128


def tiny_config(arcface_sha256: str | None = None) -> Any:
    """The :class:`EncoderConfig` of the tiny encoder."""
    from engine.sketch.config import EncoderConfig, PreprocessConfig  # lazy: pulls cv2

    return EncoderConfig(architecture="tiny-vit-test", model_cfg=copy.deepcopy(TINY_MODEL_CFG),
                         head_hidden=TINY_HEAD_HIDDEN, preprocess=PreprocessConfig(input_size=TINY_INPUT),
                         arcface_sha256=arcface_sha256,
                         training={"note": "random weights: demo and test stand-in, never trained"})


def build_sketch_encoder(out: Path, seed: int = 0, with_onnx: bool = True) -> Path:
    """Write the tiny sketch encoder to ``out/sketch_encoder`` and return that folder."""
    import torch

    from engine.sketch.checkpoint import save_encoder  # lazy: pulls cv2
    from engine.sketch.model import build_encoder  # lazy: pulls torch
    from engine.sketch.onnx_export import export_onnx  # lazy: pulls cv2

    out = Path(out)
    arcface = out / "buffalo_l.w600k_r50" / "w600k_r50.onnx"
    cfg = tiny_config(sha256_file(arcface) if arcface.is_file() else None)
    torch.manual_seed(seed)
    encoder = build_encoder(cfg).eval()
    dest = save_encoder(out / "sketch_encoder", encoder.state_dict(), cfg)
    if with_onnx:
        export_onnx(encoder, cfg, dest / "model.onnx")
    return dest


def build(out: Path, realistic: bool = False, sketch_encoder: bool = True) -> Path:
    """Write the tiny detector, recognizer (and sketch encoder) under ``out`` in manifest layout; return ``out``."""
    out = Path(out)
    build_detector(out / "buffalo_l.det_10g" / "det_10g.onnx")
    build_recognizer(out / "buffalo_l.w600k_r50" / "w600k_r50.onnx")
    if realistic:
        build_realistic_recognizer(out / "realistic" / "w600k_r50.onnx")
    if sketch_encoder:
        build_sketch_encoder(out)
    return out
