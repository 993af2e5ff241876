"""ONNX signature checks: refuse a model file whose inputs and outputs are not what its role needs.

Why: insightface routes an ONNX file to detector or recognizer code by its signature, and a wrong file
(a landmark model named ``det_10g.onnx``, a 128-D recognizer) would otherwise load and then fail deep
inside a gallery import, or worse, silently produce embeddings in another vector space.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import ModelInvalid
from engine.models.manifest import ModelSpec

EMBEDDING_DIM = 512

Dims = list[int | None] | None  # None: rank unknown; a None dim: symbolic/unknown size


def _dims(value_info: Any) -> Dims:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]


def _fmt(dims: Dims) -> str:
    if dims is None:
        return "?"
    return "×".join("N" if i == 0 and d is None else ("?" if d is None else str(d)) for i, d in enumerate(dims))


def read_signature(path: Path, name: str | None = None) -> tuple[list[Dims], list[Dims]]:
    """(input shapes, output shapes) of an ONNX graph; initializers are not counted as inputs.

    Args:
        path: the file to read.
        name: how to call the file in messages (default: its file name).
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several unrelated types for garbage
        raise ModelInvalid(f"{name or path.name} is not a readable ONNX model ({type(exc).__name__}: {exc})",
                           hint="The file is damaged or is not the model; get it again.") from exc
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [_dims(v) for v in graph.input if v.name not in initializers]
    outputs = [_dims(v) for v in graph.output]
    return inputs, outputs


def _describe(inputs: list[Dims], outputs: list[Dims]) -> str:
    ins = ", ".join(_fmt(d) for d in inputs) or "none"
    outs = ", ".join(_fmt(d) for d in outputs) or "none"
    return f"inputs [{ins}], outputs [{outs}]"


def _check_detector(spec: ModelSpec, inputs: list[Dims], outputs: list[Dims]) -> str | None:
    ok_input = len(inputs) == 1 and inputs[0] is not None and len(inputs[0]) == 4 and inputs[0][1] in (3, None)
    if ok_input and len(outputs) >= 5:
        return None
    return "a face detector (SCRFD): one input N×3×H×W and at least 5 outputs (scores, boxes[, keypoints] per stride)"


def _check_recognizer(spec: ModelSpec, inputs: list[Dims], outputs: list[Dims]) -> str | None:
    width, height = spec.input_size or (112, 112)
    want_in = [3, height, width]
    ok_input = len(inputs) == 1 and inputs[0] is not None and len(inputs[0]) == 4 and inputs[0][1:] == want_in
    ok_output = (len(outputs) == 1 and outputs[0] is not None and len(outputs[0]) == 2
                 and outputs[0][1] == EMBEDDING_DIM)
    if ok_input and ok_output:
        return None
    return f"a face recognizer (ArcFace): input N×3×{height}×{width}, one output N×{EMBEDDING_DIM}"


# Task -> check returning None when the signature fits, else the expected signature in words.
_CHECKS: dict[str, Callable[[ModelSpec, list[Dims], list[Dims]], str | None]] = {
    "detection": _check_detector,
    "recognition": _check_recognizer,
}


def check_onnx_signature(spec: ModelSpec, rel: str, path: Path) -> None:
    """Raise :class:`ModelInvalid` when an ``.onnx`` file does not have the signature its model's task needs.

    Files of other types and tasks without a known signature pass unchecked.

    Args:
        spec: the model the file is being installed as.
        rel: the file's path inside the model folder (decides whether it is an ONNX file).
        path: where the candidate file's bytes are now.
    """
    checker = _CHECKS.get(spec.task)
    if checker is None or not rel.lower().endswith(".onnx"):
        return
    inputs, outputs = read_signature(path, rel)
    expected = checker(spec, inputs, outputs)
    if expected is not None:
        raise ModelInvalid(
            f"{rel} is not the file for {spec.title}: expected {expected}; "
            f"this file has {_describe(inputs, outputs)}",
            hint=f"Check that the right file was supplied (source: {spec.source}).",
        )
