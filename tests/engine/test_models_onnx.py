"""ONNX signature checks on model files, plus the tiny ONNX builders the other model tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelInvalid
from engine.models import get_spec
from engine.models.signature import check_onnx_signature, read_signature


def onnx_bytes(in_shape: list[int | str], out_widths: list[int]) -> bytes:
    """A valid ONNX graph (opset 13, ir_version 8): input ``in_shape`` -> mean over H, W -> one MatMul per output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(len(out_widths))
    x = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, in_shape)
    nodes = [helper.make_node("ReduceMean", ["input.1"], ["pooled"], axes=[2, 3], keepdims=0)]
    inits, outs = [], []
    for i, width in enumerate(out_widths):
        weight = rng.standard_normal((int(in_shape[1]), width)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w{i}"))
        nodes.append(helper.make_node("MatMul", ["pooled", f"w{i}"], [f"out{i}"]))
        outs.append(helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, [in_shape[0], width]))
    graph = helper.make_graph(nodes, "tiny", [x], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def detector_bytes() -> bytes:
    """SCRFD-like signature: one N×3×H×W input, 9 outputs (scores, boxes, keypoints for 3 strides)."""
    return onnx_bytes([1, 3, "H", "W"], [1, 4, 10] * 3)


def recognizer_bytes(dim: int = 512, size: int = 112) -> bytes:
    """ArcFace-like signature: N×3×size×size -> N×dim."""
    return onnx_bytes(["N", 3, size, size], [dim])


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_real_signatures_pass(tmp_path: Path) -> None:
    check_onnx_signature(get_spec("buffalo_l.det_10g"), "det_10g.onnx", _write(tmp_path, "d.onnx", detector_bytes()))
    check_onnx_signature(get_spec("buffalo_l.w600k_r50"), "w600k_r50.onnx",
                         _write(tmp_path, "r.onnx", recognizer_bytes()))


def test_read_signature_ignores_initializers_and_keeps_symbolic_batch(tmp_path: Path) -> None:
    inputs, outputs = read_signature(_write(tmp_path, "r.onnx", recognizer_bytes()))
    assert inputs == [[None, 3, 112, 112]]
    assert outputs == [[None, 512]]


@pytest.mark.parametrize("data", [recognizer_bytes(dim=128), recognizer_bytes(size=96), detector_bytes()],
                         ids=["128-d output", "96px input", "detector graph"])
def test_wrong_recognizer_signature_is_refused_naming_the_expected_one(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ModelInvalid) as err:
        check_onnx_signature(get_spec("buffalo_l.w600k_r50"), "w600k_r50.onnx", _write(tmp_path, "r.onnx", data))
    assert "N×3×112×112" in str(err.value) and "N×512" in str(err.value)


def test_detector_with_too_few_outputs_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.onnx", onnx_bytes([1, 3, "H", "W"], [1, 4]))
    with pytest.raises(ModelInvalid, match="at least 5 outputs"):
        check_onnx_signature(get_spec("buffalo_l.det_10g"), "det_10g.onnx", path)


def test_garbage_onnx_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.onnx", b"\xff\xfe this is not a protobuf \x00" * 50)
    with pytest.raises(ModelInvalid):
        check_onnx_signature(get_spec("buffalo_l.det_10g"), "det_10g.onnx", path)


def test_non_onnx_files_and_unchecked_tasks_pass(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.bin", b"anything")
    check_onnx_signature(get_spec("buffalo_l.det_10g"), "notes.txt", path)
    check_onnx_signature(get_spec("sd15.vae_ft_mse"), "config.json", path)


def test_our_check_agrees_with_insightface_routing(tmp_path: Path) -> None:
    """What we accept as detector / recognizer is what insightface's model_zoo loads as SCRFD / ArcFace."""
    from insightface.model_zoo import get_model

    det = get_model(str(_write(tmp_path, "det.onnx", detector_bytes())), providers=["CPUExecutionProvider"])
    rec = get_model(str(_write(tmp_path, "rec.onnx", recognizer_bytes())), providers=["CPUExecutionProvider"])
    assert type(det).__name__ == "SCRFD"
    assert type(rec).__name__ == "ArcFaceONNX"
