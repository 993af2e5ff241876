"""Synthetic identities on the tiny pipelines: the product's FaceID makes K photos per training identity
from its ArcFace prototype, the teacher's cosine filters them, the kept ones are sketched and marked
synthetic, and none belongs to a validation or test identity."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.faces import load_image
from tests.trainer import synthetic
from tests.trainer.conftest import tiny_cli_args
from trainer.__main__ import main as trainer_main
from trainer.config import TeacherConfig
from trainer.data import split_identities
from trainer.loop import Trainer
from trainer.synthetic_ids import SEP, read_manifest, teacher_identity

K = 2


def _synthetic_sets(models: Path, bar: float) -> tuple[str, ...]:
    return (f"synthetic.models_dir='{models}'", "synthetic.allow_cpu=true", "synthetic.device='cpu'",
            "synthetic.size=64", "synthetic.steps=2", f"synthetic.min_cosine={bar}")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert trainer_main(args) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_make_synthetic_keeps_k_photos_per_training_identity_that_clear_the_bar(
        tmp_path: Path, tiny_models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 12, seed=5)
    train, val, test = split_identities([f"id_{i:04d}" for i in range(12)], 0.15, 0.1)

    def make(bar: float) -> dict[str, Any]:
        return _run(["make-synthetic", "--per-identity", str(K),
                     *tiny_cli_args(root, tiny_models_dir, tmp_path / "run", *_synthetic_sets(tiny_models_dir, bar))],
                    capsys)

    def doctor(bar: float) -> dict[str, Any]:
        capsys.readouterr()
        trainer_main(["check", str(root), "--json", "--no-faces",
                      *tiny_cli_args(root, tiny_models_dir, tmp_path / "run", f"synthetic.min_cosine={bar}")])
        return json.loads(capsys.readouterr().out)

    done = make(-1.0)  # every photo with a face clears this bar
    assert done["attempted"] == K * len(train) == done["synthetic_pairs"] == done["generated"]
    doc = read_manifest(root)
    entries = doc["entries"]
    assert doc["synthetic"] is True and all(e["synthetic"] is True for e in entries)
    assert sorted(e["source_id"] for e in entries) == sorted(i for i in train for _ in range(K))
    assert not {e["source_id"] for e in entries} & (set(val) | set(test))  # never a val or test identity
    assert len({e["prompt"] for e in entries}) > K  # pose, light and age vary between photos
    # The recorded cosine is the teacher ArcFace's, between the kept photo and the identity's prototype.
    teacher = TeacherConfig(arcface_onnx=str(tiny_models_dir / "buffalo_l.w600k_r50" / "w600k_r50.onnx"),
                            detector_onnx=str(tiny_models_dir / "buffalo_l.det_10g" / "det_10g.onnx"), device="cpu")
    with np.load(root / "arcface_prototypes.npz") as z:
        protos = dict(zip(z["ids"].tolist(), z["vectors"], strict=True))
    e = entries[0]
    vec = teacher_identity(teacher)(load_image(root / "synthetic" / e["photo"]))
    assert vec is not None and float(vec @ protos[e["source_id"]]) == pytest.approx(e["cosine"], abs=1e-4)
    assert load_image(root / "synthetic" / e["sketch"]).ndim == 3  # the photo's sketch, beside it
    assert doctor(-1.0)["synthetic_pairs"] == K * len(train)

    # A bar between the cosines keeps exactly the photos at or above it.
    cosines = {x["id"]: x["cosine"] for x in entries}
    bar = float(np.median(list(cosines.values())))
    done = make(bar)
    kept = {x["id"] for x in read_manifest(root)["entries"] if x["status"] == "kept"}
    assert kept == {i for i, c in cosines.items() if c >= bar} and 0 < len(kept) < len(cosines)
    assert done["synthetic_pairs"] == len(kept) and done["rejected"] == len(cosines) - len(kept)
    assert doctor(bar)["synthetic_pairs"] == len(kept)

    # Negative control: no photo reaches a cosine of 1.01, so none is kept, and the doctor counts none.
    done = make(1.01)
    assert done["synthetic_pairs"] == 0 and done["rejected"] == K * len(train)
    assert not [x for x in read_manifest(root)["entries"] if x["status"] == "kept"]
    assert doctor(1.01)["synthetic_pairs"] == 0


def test_a_run_trains_on_synthetic_pairs_of_training_identities_only_and_reports_them(
        tmp_path: Path, make_config: Any, tiny_models_dir: Path) -> None:
    root, run = tmp_path / "ds", tmp_path / "run"
    synthetic.write_dataset(root, 12, seed=6)
    cfg = make_config(root, run, "optim.batch_size=8", "optim.epochs=1", "data.test_fraction=0.1",
                      f"synthetic.per_identity={K}", *_synthetic_sets(tiny_models_dir, -1.0))
    trainer = Trainer(cfg, stream=io.StringIO())
    trainer.fit()
    s = trainer.s
    assert s is not None
    n = len(s.train_ids)
    ev = next(e for e in trainer.reporter.history if e["event"] == "synthetic")
    assert ev["synthetic_pairs"] == K * n == len(s.synthetic_ids) and ev["generated"] == K * n
    # Extra samples of the training classes; validation and test hold only real sketches of their own people.
    assert len(s.dataset) == n + K * n
    for sid, label in zip(s.synthetic_ids, s.dataset.labels[n:], strict=True):
        assert s.train_ids[label] == sid.split(SEP)[0]
    assert not {i.split(SEP)[0] for i in s.synthetic_ids} & (set(s.val_ids) | set(s.test_ids))
    assert s.val_inputs.shape[0] == len(s.val_ids) and s.test_inputs is not None
    assert s.test_inputs.shape[0] == len(s.test_ids) and not set(s.synthetic_ids) & set(s.all_ids)
    # The training report marks every synthetic pair and counts them beside the test figures.
    report = json.loads((run / "report.json").read_text("utf-8"))
    assert sorted(p["id"] for p in report["synthetic_pairs"]) == sorted(s.synthetic_ids)
    assert all(p["synthetic"] is True for p in report["synthetic_pairs"])
    assert report["test"]["training_data"] == {"real_train_pairs": n, "synthetic_pairs": K * n,
                                               "synthetic": report["test"]["training_data"]["synthetic"]}
    exported = json.loads((run / "export" / "config.json").read_text("utf-8"))
    assert exported["training"]["synthetic_pairs"] == K * n
    # A second run reuses the manifest's photos: nothing is generated again.
    again = Trainer(make_config(root, tmp_path / "run2", "optim.batch_size=8", "optim.epochs=1",
                                f"synthetic.per_identity={K}", *_synthetic_sets(tiny_models_dir, -1.0)),
                    stream=io.StringIO())
    again.setup()
    ev2 = next(e for e in again.reporter.history if e["event"] == "synthetic")
    assert ev2["generated"] == 0 and ev2["reused"] == K * n and ev2["synthetic_pairs"] == K * n
