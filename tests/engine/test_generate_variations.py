"""Variations: InstructPix2Pix on a tiny real pipeline, edits in turn, failures isolated, cancel, refusal."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.errors import Cancelled, EngineError
from engine.generate.model_set import EDITOR, SAFETY, ModelLocator
from engine.generate.provenance import read_record
from engine.generate.types import EditSpec, GenerationRefused, RuntimeOptions, VariationResult
from engine.generate.variations import EDITS, EditOptions, LocalEditor, edits_for, run_variations
from engine.progress import CancelToken, ProgressEvent
from tests.fixtures import tiny_diffusion


@pytest.fixture(scope="session")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted by a local variation")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def editor(gen_models: Path) -> LocalEditor:
    return LocalEditor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True),
                       options=EditOptions(steps=2, size=32))


def face() -> Image.Image:
    return Image.fromarray((np.random.default_rng(5).random((40, 40, 3)) * 255).astype(np.uint8))


class Flaky:
    """Wraps a backend and fails on chosen edits, as a remote error or GPU OOM would."""

    name = "flaky"
    remote = False

    def __init__(self, inner: LocalEditor, fail: set[str]) -> None:
        self.inner, self.fail, self.ended = inner, fail, 0

    def begin_batch(self, count: int) -> None:
        self.inner.begin_batch(count)

    def edit(self, image: Image.Image, spec: EditSpec, **kw: Any) -> Image.Image:
        if spec.name in self.fail:
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.inner.edit(image, spec, **kw)

    def end_batch(self) -> None:
        self.ended += 1

    def provenance(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        return self.inner.provenance()


def test_local_edits_run_in_turn_with_provenance(editor: LocalEditor, gen_models: Path, tmp_path: Path) -> None:
    edits = edits_for({"is_male": True, "has_glasses": False}, include=["add_glasses", "older"])
    events: list[ProgressEvent] = []
    seen: list[VariationResult] = []
    report = run_variations(face(), edits, editor, seed=9, progress=events.append, on_result=seen.append,
                            sources={"sketch_sha256": "a" * 64})
    assert report.backend == "instruct_pix2pix" and not report.remote and not report.failed
    assert [r.spec.name for r in report.results] == ["add_glasses", "older"] == [r.spec.name for r in seen]
    assert all(r.image is not None and r.image.size == (32, 32) for r in report.results)
    assert events and events[-1].done == events[-1].total == 200
    path = tmp_path / "v.png"
    report.results[1].save(path)
    record = read_record(path)
    assert record is not None and record["kind"] == "variation" and record["synthetic"] is True
    assert record["seed"] == 10 and record["parameters"]["instruction"] == EDITS["older"].instruction
    assert record["parameters"]["backend"] == "instruct_pix2pix" and record["parameters"]["remote"] is False
    assert set(record["models"]) == {EDITOR, SAFETY} and record["sources"]["sketch_sha256"] == "a" * 64
    assert record["safety_checker"]["enabled"] is True and record["safety_checker"]["flagged"] is False
    again = run_variations(face(), edits[1:], editor, seed=10, mark=False)
    assert np.array_equal(np.asarray(again.results[0].image), np.asarray(editor.edit(
        face(), edits[1], seed=10, progress=None, cancel=None)))


def test_a_failing_edit_does_not_stop_the_others(editor: LocalEditor) -> None:
    backend = Flaky(editor, fail={"bald"})
    edits = [EDITS["add_glasses"], EDITS["bald"], EDITS["incognito"]]
    report = run_variations(face(), edits, backend, seed=1)
    assert [r.ok for r in report.results] == [True, False, True]
    assert report.failed[0].spec.name == "bald" and "out of memory" in (report.failed[0].error or "")
    assert backend.ended == 1
    with pytest.raises(EngineError, match="has no image"):
        report.failed[0].save("unused.png")


def test_cancel_stops_the_run_within_a_step(editor: LocalEditor) -> None:
    pipe = editor._pipeline()
    count = [0]
    handle = pipe.unet.register_forward_hook(lambda *a: count.__setitem__(0, count[0] + 1))
    token = CancelToken()
    done: list[VariationResult] = []

    def progress(event: ProgressEvent) -> None:
        if event.done >= 150:  # halfway through the second edit
            token.cancel()

    backend = Flaky(editor, fail=set())
    try:
        with pytest.raises(Cancelled):
            run_variations(face(), [EDITS["add_glasses"], EDITS["older"], EDITS["bald"]], backend, seed=0,
                           progress=progress, cancel=token, on_result=done.append)
    finally:
        handle.remove()
    assert count[0] == 3 and len(done) == 1  # edit 1 (2 steps) + 1 step of edit 2, then nothing
    assert backend.ended == 1


def test_identity_scores_compare_with_the_base_face(editor: LocalEditor) -> None:
    ref = np.eye(512, dtype=np.float32)[0]
    answers = iter([ref, ref * -1])  # base face, then the edited face
    report = run_variations(face(), [EDITS["older"]], editor, seed=2, identity=lambda bgr: next(answers))
    assert report.results[0].identity_score == pytest.approx(-1.0)


def test_cpu_only_machine_refuses_edits_with_an_estimate(gen_models: Path) -> None:
    ed = LocalEditor(models=ModelLocator(gen_models), runtime=RuntimeOptions(), options=EditOptions(steps=2, size=32))
    with pytest.raises(GenerationRefused, match="2 edits") as info:
        run_variations(face(), [EDITS["older"], EDITS["bald"]], ed)
    assert info.value.estimated_seconds > 0 and ed._pipe is None
