"""The Reconstruct tab on the tiny diffusion models: generate, refuse on CPU, save, probe, cancel, vary, guide."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMessageBox

from tests.desktop.conftest import wait_idle, wait_job

pytestmark = pytest.mark.gui

CASE = {"case_number": "2026-0777", "title": "Reconstruction test", "examiner": "T. Tester", "witnesses": ["W1"],
        "incident_date": "", "notes": ""}


@pytest.fixture(scope="module")
def generation_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Detector, recognizer, sketch encoder and every tiny generation model, built once for this module.

    The desktop conftest's ``tiny_models_dir`` holds only the face models; reconstruction needs the rest.
    """
    from tests.fixtures import tiny_models

    return tiny_models.build(tmp_path_factory.mktemp("tiny_generation_models"))


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    from tests.fixtures import tiny_diffusion

    with tiny_diffusion.one_thread():
        yield


@pytest.fixture
def models(generation_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKETCHFACE_MODELS_DIR", str(generation_models))
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    return generation_models


def _draw(window: Any) -> None:
    window.setProperty("confirm_close", False)  # a failing test must not hang on "jobs still running?"
    canvas = window.sketch.canvas
    for k in range(12):
        canvas.draw_stroke([(180 + k * 25, 250), (200 + k * 25, 600)], size=5)
    canvas.draw_stroke([(150, 300), (650, 300)], size=8)


def _set(window: Any, n: int = 2, steps: int = 2, size: int = 64, seed: int = 5) -> Any:
    p = window.reconstruct
    window.tabs.setCurrentWidget(p)
    p.candidates.setValue(n)
    p.steps.setValue(steps)
    p.image_size.setValue(size)
    p.seed.setValue(seed)
    p.prompt.setPlainText("RAW photo, portrait of a person")
    return p


def _run_anyway(qtbot: Any, window: Any) -> None:
    """Accept the CPU refusal the way the examiner would: the dialog's "Run anyway" button."""
    flow = window.reconstruct_flow
    qtbot.waitUntil(lambda: flow.refusal is not None and flow.refusal.isVisible(), timeout=30_000)
    box = flow.refusal
    assert "no usable NVIDIA GPU" in box.text()
    run = next(b for b in box.buttons() if b.objectName() == "RunAnyway")
    assert run.text().startswith("Run anyway (≈ ")
    run.click()


def _generate(qtbot: Any, window: Any, **kw: Any) -> list[Any]:
    panel = _set(window, **kw)
    flow = window.reconstruct_flow
    panel.generate_button.click()
    refused = flow.job
    _run_anyway(qtbot, window)
    assert flow.job is not None and flow.job is not refused  # the request again, now allowed on the CPU
    wait_job(qtbot, window.hub, flow.job)
    return list(panel.strip.outputs)


def test_generate_asks_on_cpu_then_shows_synthetic_candidates_best_identity_first(qtbot: Any, window: Any,
                                                                                   models: Path) -> None:
    _draw(window)
    outputs = _generate(qtbot, window)
    panel = window.reconstruct
    assert [o.seed for o in sorted(outputs, key=lambda o: o.seed)] == [5, 6]
    scores = [o.identity_score for o in outputs]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)
    for row, out in enumerate(outputs):
        item = panel.strip.item(row)
        assert f"identity {out.identity_score:.3f}" in item.text() and item.toolTip().startswith("SYNTHETIC")
        # The label is painted into the thumbnail itself: its top band is the warning red.
        thumb = item.icon().pixmap(panel.strip.iconSize()).toImage()
        top = QColor(thumb.pixel(2, 2))
        assert top.red() > 120 and top.green() < 80 and top.blue() < 80
        assert out.provenance["synthetic"] is True and out.provenance["models"]
        assert out.provenance["sources"]["sketch_embedder_baseline"] == "false"
    assert "SYNTHETIC, best identity first" in panel.status.text()
    assert not window.errors.shown


def test_refusal_cancel_runs_nothing(qtbot: Any, window: Any, models: Path) -> None:
    _draw(window)
    panel = _set(window)
    panel.generate_button.click()
    flow = window.reconstruct_flow
    qtbot.waitUntil(lambda: flow.refusal is not None and flow.refusal.isVisible(), timeout=30_000)
    flow.refusal.button(QMessageBox.StandardButton.Cancel).click()
    wait_idle(qtbot, window.hub)
    assert panel.strip.count() == 0 and panel.generate_button.isEnabled()


def test_save_to_case_links_generated_image_to_the_sketch_version(qtbot: Any, window: Any, models: Path) -> None:
    from engine.cases import list_generated, list_sketches
    from engine.generate.provenance import read_record

    wait_job(qtbot, window.hub, window.flow.new_case(dict(CASE)))
    _draw(window)
    wait_job(qtbot, window.hub, window.flow.save_sketch(witness="W1"))
    outputs = _generate(qtbot, window, n=1, steps=1, size=32)
    window.reconstruct.save_button.click()
    wait_idle(qtbot, window.hub)
    assert not window.errors.shown, window.errors.shown
    case = window.cases.case
    (gen,) = list_generated(case)
    (version,) = list_sketches(case)  # the drawing was saved unchanged: no extra version
    assert gen.parent == version.ref
    assert gen.params["synthetic"] is True and gen.params["seed"] == outputs[0].seed
    assert gen.params["models"] == outputs[0].provenance["models"]
    assert all(len(sha) == 64 for files in gen.params["models"].values() for sha in files.values())
    stored = case.read_file(gen.path, gen.sha256)
    assert read_record(bytes(stored))["synthetic"] is True
    assert "generated image" in window.reconstruct.status.text()


def test_probe_fuses_sketch_with_a_synthetic_labelled_query(qtbot: Any, window: Any, models: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _draw(window)
    (output,) = _generate(qtbot, window, n=1, steps=1, size=32)
    monkeypatch.setattr(window.navigator, "checked_galleries", lambda: ["gallery-1"])
    started: list[Any] = []
    monkeypatch.setattr(window.searches, "run", lambda req: started.append(req) or window.hub.submit(
        "fake search", lambda _p, _c: None, visible=False))
    window.reconstruct.probe_button.click()
    (request,) = started
    assert [q.kind for q in request.queries] == ["sketch", "photo"]
    assert request.queries[1].name.startswith("SYNTHETIC") and "SYNTHETIC" in request.label
    assert request.queries[1].data == output.png()
    assert window.tabs.currentWidget() is window.results
    wait_idle(qtbot, window.hub)


def test_cancel_stops_generation_and_keeps_what_was_made(qtbot: Any, window: Any, models: Path) -> None:
    _draw(window)
    panel = _set(window, n=6, steps=40, size=32)
    job = window.reconstruct_flow.generate(allow_cpu=True)
    assert job is not None
    qtbot.waitUntil(lambda: job.last_progress.done >= 2, timeout=30_000)
    panel.cancel_button.click()
    wait_job(qtbot, window.hub, job)
    assert job.state.value == "cancelled"
    assert panel.strip.count() < 6 and "Cancelled" in panel.status.text()
    assert not window.errors.shown and panel.generate_button.isEnabled()


def test_missing_generation_models_open_the_guide_not_an_error(qtbot: Any, window: Any) -> None:
    _draw(window)
    panel = _set(window)
    panel.generate_button.click()
    guide = window.dialogs.guide
    assert guide is not None and guide.isVisible()
    assert "generation models" in guide.findChild(type(panel.status), "GuideReason").text()
    assert not window.hub.jobs and not window.errors.shown
    guide.close()


def test_vary_runs_locally_and_never_builds_the_cloud_backend_when_switched_off(
        qtbot: Any, window: Any, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.generate import replicate_backend

    built: list[Any] = []

    def spy(self: Any, **kwargs: Any) -> None:
        built.append(kwargs)
        raise AssertionError("ReplicateBackend constructed")

    monkeypatch.setattr(replicate_backend.ReplicateBackend, "__init__", spy)
    assert window.session.settings.cloud_backend_enabled is False
    _draw(window)
    (base,) = _generate(qtbot, window, n=1, steps=1, size=32)
    panel, flow = window.reconstruct, window.reconstruct_flow
    assert [panel.backend.itemData(i) for i in range(panel.backend.count())] == ["local"]
    assert flow.vary(base, "replicate") is None  # even if asked directly: nothing built, nothing asked
    assert flow.upload_warning is None and not built
    panel.vary_button.click()
    refused = flow.job
    _run_anyway(qtbot, window)  # the local editor refuses on CPU too, then runs
    assert flow.job is not None and flow.job is not refused
    wait_job(qtbot, window.hub, flow.job)
    variations = [o for o in panel.strip.outputs if o.kind == "variation"]
    assert variations and panel.strip.outputs[0] is base and not flow.failures
    assert all(v.provenance["parameters"]["remote"] is False for v in variations)
    assert all(panel.strip.item(i).toolTip().startswith("SYNTHETIC") for i in range(panel.strip.count()))
    assert not built
    # Switched on, the cloud backend is offered, and nothing is built before the on-screen warning is accepted.
    window.session.settings.cloud_backend_enabled = True
    window.tabs.setCurrentWidget(window.results)
    window.tabs.setCurrentWidget(panel)
    assert panel.backend.count() == 2
    panel.backend.setCurrentIndex(1)
    assert panel.cloud_warning.isVisible()
    panel.vary_button.click()
    assert flow.upload_warning is not None and flow.upload_warning.isVisible() and "uploaded" in \
        flow.upload_warning.text()
    flow.upload_warning.button(QMessageBox.StandardButton.Cancel).click()
    wait_idle(qtbot, window.hub)
    assert not built
