"""ReconstructController: what the Reconstruct panel's buttons start, and where the answers go.

Generation runs as engine-lane operations (:mod:`sketchface_desktop.ops.generate`); a generated
image is stored through the :class:`CaseController` (the one writer of the case). Failures go the
window's usual way, except two the examiner decides on here: a CPU-only refusal (its estimate and a
"Run anyway" choice) and, before any upload, the cloud warning, asked every time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.controllers.examiner_flow import ExaminerFlow
from sketchface_desktop.controllers.ports import Prompter, SketchSource
from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import Op, Runner
from sketchface_desktop.ops import generate as gen_ops
from sketchface_desktop.ops.generation import (
    BACKEND_REPLICATE,
    SOURCE_CANDIDATE,
    GeneratedOutput,
    GenerateSettings,
    GenerationEngine,
    GenerationInputs,
)
from sketchface_desktop.ops.search import QueryImage, SearchRequest, sketch_request
from sketchface_desktop.workers import Job, JobState


class ReconstructView(Protocol):
    """The Reconstruct panel as the controller uses it."""

    @property
    def source_kind(self) -> str: ...
    def settings(self) -> GenerateSettings: ...
    def set_running(self, running: bool, message: str = "") -> None: ...
    def set_status(self, text: str) -> None: ...
    def set_attributes(self, attrs: Any, prompt: str) -> None: ...
    def set_cloud_enabled(self, enabled: bool) -> None: ...
    def cloud_offered(self) -> bool: ...
    def outputs(self) -> list[GeneratedOutput]: ...
    def add_output(self, output: GeneratedOutput) -> None: ...
    def show_outputs(self, outputs: list[GeneratedOutput], keep_previous: bool = False) -> None: ...
    def show_control_image(self, image: Any) -> None: ...


def approx_duration(seconds: float) -> str:
    """"≈ 40 s", "≈ 7 min", "≈ 2.5 h": how long a CPU run would take, for the refusal dialog."""
    if seconds < 90:
        return f"≈ {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"≈ {round(seconds / 60)} min"
    return f"≈ {seconds / 3600:.1f} h"


class ReconstructController(QObject):
    """Runs the Reconstruct panel's work.

    Signals:
        output_ready(object): a GeneratedOutput finished by a running job (emitted from the engine
            thread, delivered in the GUI thread), so the strip fills while the rest still generate.
        failed(object, object): a job and its exception that the window should show (not a refusal).
    """

    output_ready = Signal(object)
    failed = Signal(object, object)

    def __init__(self, runner: Runner, session: EngineSession, cases: CaseController, flow: ExaminerFlow,
                 panel: ReconstructView, sketch: SketchSource, ask: Prompter,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = session
        self.cases = cases
        self.flow = flow
        self.panel = panel
        self.sketch = sketch
        self.ask = ask
        self.engine = GenerationEngine(session)
        self.job: Job | None = None
        self.attributes: Any = None
        self.refusal: Any = None
        self.upload_warning: Any = None
        self.failures: list[str] = []
        self.saved: list[Any] = []
        self._keep: list[GeneratedOutput] = []
        self.output_ready.connect(panel.add_output)
        self.refresh_cloud()

    @property
    def busy(self) -> bool:
        """A generation or variation is queued or running (a failed one may still await its finished signal)."""
        return self.job is not None and self.job.active

    def refresh_cloud(self) -> None:
        """Offer the cloud backend only while Settings has it switched on."""
        enabled = bool(self.session.settings.cloud_backend_enabled)
        if enabled != self.panel.cloud_offered():
            self.panel.set_cloud_enabled(enabled)

    def _run(self, op: Op[Any], on_result: Callable[[Any], None], retry: Callable[[], Job | None] | None) -> Job:
        """Run an engine op whose CPU refusal asks the examiner and whose other failures go the usual way."""
        holder: list[Job] = []

        def failed(exc: BaseException) -> None:
            from engine.generate.types import GenerationRefused

            if isinstance(exc, GenerationRefused) and retry is not None:
                self._ask_cpu(exc, retry)
            else:
                self.failed.emit(holder[0], exc)

        job = op.success(on_result).failure(failed).finished(self._finished).run(self.runner)
        holder.append(job)
        self.job = job
        self.panel.set_running(True, f"{job.title}…")
        return job

    def _finished(self, job: Job) -> None:
        if job is not self.job:
            return
        self.job = None
        shown = len(self.panel.outputs())
        text = {JobState.CANCELLED: f"Cancelled — {shown} output(s) kept.",
                JobState.FAILED: "" if self.refusal is not None else "Stopped: see the message."}.get(job.state, "")
        self.panel.set_running(False, text)

    def _ask_cpu(self, exc: Any, retry: Callable[[], Job | None]) -> Any:
        """The CPU-only refusal with its estimate; "Run anyway" repeats the request with allow_cpu."""
        self.refusal = self.ask.confirm(
            "GenerationRefusedDialog", "No GPU for generation", exc.message,
            "Generating on this computer's processor is possible but slow. Reduce candidates, steps or size to "
            "make it faster, or run it on a workstation with a GPU.",
            f"Run anyway ({approx_duration(exc.estimated_seconds)})", retry, lambda h: self._forget(h, "refusal"),
            "RunAnyway")
        self.panel.set_status("Waiting for your choice: no GPU on this computer.")
        return self.refusal

    def _inputs(self, candidate: Any = None) -> GenerationInputs | None:
        if self.sketch.is_blank():
            self.panel.set_status("The sheet is empty: draw or load a sketch first.")
            return None
        inputs = GenerationInputs(self.sketch.to_png_bytes(), self.sketch.face_box())
        if self.panel.source_kind == SOURCE_CANDIDATE:
            row = self.flow.results.current_row()
            if row is None:
                self.panel.set_status("Select a candidate in Results first (its photo becomes the face image).")
                return None
            inputs = replace(inputs, face_photo=row.photo_path, face_label=row.subject_id or row.photo_path,
                             extra_sources={"face_image_photo_sha256": row.photo_sha256,
                                            "face_image_gallery_id": row.gallery_id,
                                            "face_image_face_id": str(row.face_id)})
        return inputs

    def _missing_models(self, structure: bool, plus: bool) -> bool:
        """Open the models guide (not a traceback) when a diffusion model the request needs is missing."""
        missing = gen_ops.missing_generation_models(structure, plus)
        if missing:
            self.ask.guide("Reconstruction needs generation models that are not installed yet: "
                           + ", ".join(missing) + ". Import them from Settings > Models.")
            self.panel.set_status("Generation models are missing: see the models guide.")
        return bool(missing)

    # -- verbs ----------------------------------------------------------------------------------
    def describe(self) -> Job | None:
        """Read the sketch's attributes (engine lane) and pre-fill the prompt with the confident ones."""
        inputs = self._inputs()
        if inputs is None or self.busy:
            return None

        def done(res: tuple[Any, str]) -> None:
            self.attributes = res[0]
            self.panel.set_attributes(res[0], res[1])

        return self._run(gen_ops.describe(self.engine, inputs), done, None)

    def generate(self, allow_cpu: bool = False) -> Job | None:
        """Generate candidates from the sketch (and the selected candidate's photo, if chosen)."""
        inputs = self._inputs()
        settings = self.panel.settings()
        if inputs is None or self.busy or self._missing_models(settings.structure, inputs.face_photo is not None):
            return None

        def done(res: tuple[list[GeneratedOutput], str]) -> None:
            outputs, note = res
            self.panel.show_outputs(self._keep + outputs)
            self.panel.show_control_image(self.engine.control_image)  # what the ControlNet followed
            best = f" (top {outputs[0].identity_score:.3f})" if outputs and outputs[0].identity_score \
                is not None else ""
            self.panel.set_status(f"{len(outputs)} SYNTHETIC, best identity first{best}. {note}")

        self._keep = []
        self.panel.show_outputs([])
        op = gen_ops.reconstruct(self.engine, settings, inputs, self.attributes, allow_cpu, self.output_ready.emit)
        return self._run(op, done, lambda: self.generate(allow_cpu=True))

    def cancel(self) -> None:
        if self.busy:
            assert self.job is not None
            self.job.cancel()

    def save(self, output: GeneratedOutput) -> Job | None:
        """Store the output in the case with its parameters, linked to the sketch version it came from."""
        if not self.cases.is_open:
            self.ask.tell("Save to case", "Create or open a case first: generated images are kept in cases, "
                          "linked to their sketch.")
            return None

        def done(gen: Any) -> None:
            self.saved.append(gen)
            link = f", generated from {gen.parent}" if gen.parent else ""
            self.panel.set_status(f"Saved to the case as generated image {gen.id}{link} (SYNTHETIC).")

        return self.cases.save_generated(output.png(), output.case_params(), sketch_png=output.sketch_png,
                                         note=f"SYNTHETIC {output.label}", on_result=done)

    def probe(self, output: GeneratedOutput) -> Job | None:
        """Search with the sketch fused with this synthetic face, labelled SYNTHETIC in the query and the record."""
        flow = self.flow
        ids = flow.scope.checked_galleries()
        if not ids:
            self.panel.set_status("Tick the galleries to search in the navigator first.")
            return None
        if not flow.models_ready("Searching"):
            return None
        opts = flow.results.options()
        synthetic = QueryImage("photo", output.png(), 1.0, f"SYNTHETIC {output.label}")
        if self.sketch.is_blank():
            request = SearchRequest((synthetic,), tuple(ids), opts.k, opts.filters, opts.group_by_subject, opts.blind,
                                    f"SYNTHETIC probe: {output.label}")
            return flow.run_request(request)
        png = self.sketch.to_png_bytes()
        base = sketch_request(png, self.sketch.face_box(), ids, opts.k, list(opts.filters),
                              group_by_subject=opts.group_by_subject, blind=opts.blind)
        request = replace(base, queries=(*base.queries, synthetic), label=f"Sketch + SYNTHETIC probe ({output.label})")
        return flow.run_request(request, png)

    def vary(self, output: GeneratedOutput, backend: str) -> Job | None:
        """Disguise variations; the cloud backend only when switched on, after the upload warning each time."""
        if self.busy:
            return None
        if backend != BACKEND_REPLICATE:
            return self._start_vary(output, remote=False)
        if not self.session.settings.cloud_backend_enabled:  # switched off since the list was filled
            self.refresh_cloud()
            self.panel.set_status("The cloud backend is switched off in Settings; nothing was sent.")
            return None
        from engine.generate.variations import edits_for

        n = len(edits_for(self.attributes))
        self.upload_warning = self.ask.confirm(
            "CloudUploadWarning", "Upload to Replicate?",
            f"The selected SYNTHETIC face will be uploaded to Replicate (replicate.com) for {n} edit(s). "
            "It leaves this computer and is subject to the service's terms.", "", "Upload and vary",
            lambda: self._start_vary(output, remote=True), lambda h: self._forget(h, "upload_warning"), "ConfirmUpload")
        return None

    def _forget(self, handle: Any, attr: str) -> None:
        """A closed question is gone: drop our reference (tests and re-asks look at it)."""
        if getattr(self, attr) is handle:
            setattr(self, attr, None)

    def _start_vary(self, output: GeneratedOutput, remote: bool, allow_cpu: bool = False) -> Job | None:
        if self.busy:
            return None
        if not remote and gen_ops.editor_missing():
            self.ask.guide("Variations need the InstructPix2Pix model, which is not installed yet.")
            return None
        settings = self.panel.settings()

        def done(res: tuple[list[GeneratedOutput], list[str]]) -> None:
            outputs, failed = res
            self.failures = failed
            self.panel.show_outputs(self._keep + outputs)
            extra = f" Failed: {'; '.join(failed)}" if failed else ""
            self.panel.set_status(f"{len(outputs)} SYNTHETIC variation(s) of seed {output.seed}.{extra}")

        self._keep = self.panel.outputs()
        op = gen_ops.vary(self.engine, output, self.attributes, remote=remote,
                          cloud_enabled=bool(self.session.settings.cloud_backend_enabled), allow_cpu=allow_cpu,
                          steps=settings.steps, size=settings.size, on_output=self.output_ready.emit)
        return self._run(op, done, None if remote else lambda: self._start_vary(output, False, allow_cpu=True))
