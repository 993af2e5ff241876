"""ReconstructController: what the Reconstruct panel's buttons start, and where the answers go.

Everything heavy runs as a job in the engine lane (one at a time with searches and imports, so two
model sessions never fight over GPU memory); saving to the case runs in the case lane. Failures go
the window's usual way (missing models open the models guide, other engine errors the error
dialog), except two the examiner decides on here: a CPU-only refusal (shown with its estimate and a
"Run anyway" choice) and, before any upload, the cloud warning, asked every time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from sketchface_desktop.reconstruct_panel import BACKEND_REPLICATE, SOURCE_CANDIDATE
from sketchface_desktop.reconstruct_work import GeneratedOutput, GenerationEngine, GenerationInputs
from sketchface_desktop.search_controller import QueryImage, SearchRequest
from sketchface_desktop.workers import Job, JobState

if TYPE_CHECKING:
    from sketchface_desktop.main_window import MainWindow

log = logging.getLogger(__name__)


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
    """

    output_ready = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.panel = window.reconstruct
        self.engine = GenerationEngine(window.session)
        self.job: Job | None = None
        self.attributes: Any = None
        self.refusal: QMessageBox | None = None
        self.upload_warning: QMessageBox | None = None
        self.failures: list[str] = []
        self.saved: list[Any] = []
        self._keep: list[GeneratedOutput] = []
        p = self.panel
        p.describe_requested.connect(lambda: self.describe())
        p.generate_requested.connect(lambda: self.generate())
        p.cancel_requested.connect(self.cancel)
        p.save_requested.connect(self.save)
        p.probe_requested.connect(self.probe)
        p.vary_requested.connect(self.vary)
        self.output_ready.connect(self._streamed)
        window.tabs.currentChanged.connect(lambda _i: self._refresh_cloud())
        self._refresh_cloud()

    @property
    def busy(self) -> bool:
        """A generation or variation is queued or running (a failed one may still await its finished signal)."""
        return self.job is not None and self.job.active

    # -- helpers --------------------------------------------------------------------------------
    def _refresh_cloud(self) -> None:
        enabled = bool(self.w.session.settings.cloud_backend_enabled)
        if enabled != (self.panel.backend.count() > 1):
            self.panel.set_cloud_enabled(enabled)

    def _submit(self, title: str, fn: Callable[[Any, Any], Any], on_result: Callable[[Any], None],
                retry: Callable[[], Job | None] | None = None) -> Job:
        """An engine-lane job whose refusal asks the examiner and whose other failures go the usual way."""
        holder: list[Job] = []

        def failed(exc: BaseException) -> None:
            from engine.generate.types import GenerationRefused

            if isinstance(exc, GenerationRefused) and retry is not None:
                self._ask_cpu(exc, retry)
            else:
                self.w.flow.job_failed(holder[0], exc)

        job = self.w.hub.submit(title, fn, on_result=on_result, on_error=failed, on_finished=self._finished)
        holder.append(job)
        self.job = job
        self.panel.set_running(True, f"{title}…")
        return job

    def _finished(self, job: Job) -> None:
        if job is not self.job:
            return
        self.job = None
        shown = len(self.panel.strip.outputs)
        text = {JobState.CANCELLED: f"Cancelled — {shown} output(s) kept.",
                JobState.FAILED: "" if self.refusal is not None else "Stopped: see the message."}.get(job.state, "")
        self.panel.set_running(False, text)

    def _ask_cpu(self, exc: Any, retry: Callable[[], Job | None]) -> QMessageBox:
        """The CPU-only refusal with its estimate; "Run anyway" repeats the request with allow_cpu."""
        box = QMessageBox(QMessageBox.Icon.Question, "No GPU for generation", exc.message,
                          QMessageBox.StandardButton.NoButton, self.w)
        box.setObjectName("GenerationRefusedDialog")
        box.setInformativeText("Generating on this computer's processor is possible but slow. Reduce candidates, "
                               "steps or size to make it faster, or run it on a workstation with a GPU.")
        run = box.addButton(f"Run anyway ({approx_duration(exc.estimated_seconds)})",
                            QMessageBox.ButtonRole.AcceptRole)
        run.setObjectName("RunAnyway")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda b: retry() if b is run else None)
        box.finished.connect(lambda _r: self._forget(box, "refusal"))
        self.refusal = box
        self.panel.status.setText("Waiting for your choice: no GPU on this computer.")
        box.open()
        return box

    def _forget(self, box: QMessageBox, attr: str) -> None:
        """A closed dialog is deleted; drop our reference first (tests and re-asks look at it)."""
        if getattr(self, attr) is box:
            setattr(self, attr, None)
        box.deleteLater()

    def _inputs(self) -> GenerationInputs | None:
        canvas, panel = self.w.sketch.canvas, self.panel
        if canvas.is_blank():
            panel.status.setText("The sheet is empty: draw or load a sketch first.")
            return None
        inputs = GenerationInputs(canvas.to_png_bytes(), canvas.face_box())
        if panel.source_kind == SOURCE_CANDIDATE:
            index = self.w.results.view.currentIndex()
            if not index.isValid():
                panel.status.setText("Select a candidate in Results first (its photo becomes the face image).")
                return None
            row = self.w.results_model.row(index.row())
            inputs = replace(inputs, face_photo=row.photo_path, face_label=row.subject_id or row.photo_path,
                             extra_sources={"face_image_photo_sha256": row.photo_sha256,
                                            "face_image_gallery_id": row.gallery_id,
                                            "face_image_face_id": str(row.face_id)})
        return inputs

    def _missing_models(self, structure: bool, plus: bool) -> bool:
        """Open the models guide (not a traceback) when a diffusion model the request needs is missing."""
        from engine.generate import model_set as ms

        needed = [ms.BASE, ms.FACEID_PLUS, ms.IMAGE_ENCODER] if plus else [ms.BASE, ms.FACEID]
        needed += [ms.CONTROLNET] if structure else []
        locator = ms.ModelLocator()
        missing = [m for m in needed if not locator.available(m)]
        if missing:
            self.w.flow.show_guide("Reconstruction needs generation models that are not installed yet: "
                                   + ", ".join(missing) + ". Import them from Settings > Models.")
            self.panel.status.setText("Generation models are missing: see the models guide.")
        return bool(missing)

    # -- verbs ----------------------------------------------------------------------------------
    def describe(self) -> Job | None:
        """Read the sketch's attributes (engine lane) and pre-fill the prompt with the confident ones."""
        inputs = self._inputs()
        if inputs is None or self.busy:
            return None
        engine = self.engine

        def work(_p: Any, _c: Any) -> tuple[Any, str]:
            from engine.generate.attributes import prompt_from_attributes

            attrs = engine.describe(inputs.sketch_png, inputs.face_box)
            return attrs, prompt_from_attributes(attrs)

        def done(res: tuple[Any, str]) -> None:
            self.attributes = res[0]
            self.panel.set_attributes(res[0], res[1])

        return self._submit("Reading the sketch's attributes", work, done)

    def generate(self, allow_cpu: bool = False) -> Job | None:
        """Generate candidates from the sketch (and the selected candidate's photo, if chosen)."""
        inputs = self._inputs()
        settings = self.panel.settings()
        if inputs is None or self.busy or self._missing_models(settings.structure,
                                                                           inputs.face_photo is not None):
            return None
        engine, attrs = self.engine, self.attributes

        def work(progress: Any, cancel: Any) -> tuple[list[GeneratedOutput], str]:
            from engine.generate.attributes import prompt_from_attributes

            chosen = settings if settings.prompt else replace(settings, prompt=prompt_from_attributes(attrs))
            return engine.reconstruct(chosen, inputs, allow_cpu, progress, cancel, self.output_ready.emit)

        def done(res: tuple[list[GeneratedOutput], str]) -> None:
            outputs, note = res
            self.panel.show_outputs(self._keep + outputs)
            best = f" (top {outputs[0].identity_score:.3f})" if outputs and outputs[0].identity_score \
                is not None else ""
            self.panel.status.setText(f"{len(outputs)} SYNTHETIC, best identity first{best}. {note}")

        self._keep = []
        self.panel.show_outputs([])
        n = settings.num_candidates
        return self._submit(f"Reconstructing {n} candidate{'s' * (n != 1)}", work, done,
                            retry=lambda: self.generate(allow_cpu=True))

    def _streamed(self, output: GeneratedOutput) -> None:
        self.panel.strip.add_output(output)
        self.panel._update_actions()

    def cancel(self) -> None:
        if self.busy:
            assert self.job is not None
            self.job.cancel()

    def save(self, output: GeneratedOutput) -> Job | None:
        """Store the output in the case with its parameters, linked to the sketch version it came from."""
        cases = self.w.cases
        if not cases.is_open:
            QMessageBox.information(self.w, "Save to case", "Create or open a case first: generated images are "
                                    "kept in cases, linked to their sketch.")
            return None
        sha = hashlib.sha256(output.sketch_png).hexdigest() if output.sketch_png else None
        if sha and not any(v.sha256 == sha for v in cases.sketches):
            # The drawing changed since (or was never saved): keep the exact sheet it came from first.
            witness = "" if cases.current_sketch_id is not None else (cases.info.witnesses or ["unknown"])[0]
            assert output.sketch_png is not None
            cases.save_sketch(output.sketch_png, witness=witness, note="the sheet a reconstruction was made from")

        def work(_p: Any, _c: Any) -> Any:
            from engine.cases import add_generated_image, list_sketches

            parent = next((v for v in reversed(list_sketches(cases.case)) if v.sha256 == sha), None) if sha else None
            return add_generated_image(cases.case, output.png(), output.case_params(), parent=parent,
                                       note=f"SYNTHETIC {output.label}")

        def done(gen: Any) -> None:
            self.saved.append(gen)
            link = f", generated from {gen.parent}" if gen.parent else ""
            self.panel.status.setText(f"Saved to the case as generated image {gen.id}{link} (SYNTHETIC).")

        return self.w.hub.submit("Saving generated image to case", work, lane="case", visible=False,
                                 cancellable=False, on_result=done)

    def probe(self, output: GeneratedOutput) -> Job | None:
        """Search with the sketch fused with this synthetic face, labelled SYNTHETIC in the query and the record."""
        w = self.w
        ids = w.navigator.checked_galleries()
        if not ids:
            self.panel.status.setText("Tick the galleries to search in the navigator first.")
            return None
        from engine import models
        from sketchface_desktop.first_run import REQUIRED

        if any(not models.installed(m) for m in REQUIRED):
            w.flow.show_guide("Searching needs the face models, which are not installed yet.")
            return None
        canvas, r = w.sketch.canvas, w.results
        filters = [f.strip() for f in r.filters.text().split(",") if f.strip()]
        synthetic = QueryImage("photo", output.png(), 1.0, f"SYNTHETIC {output.label}")
        if canvas.is_blank():
            request = SearchRequest((synthetic,), tuple(ids), r.k.value(), tuple(filters), r.group.isChecked(),
                                    r.blind.isChecked(), f"SYNTHETIC probe: {output.label}")
        else:
            png = canvas.to_png_bytes()
            base = w.searches.sketch_request(png, canvas.face_box(), ids, r.k.value(), filters,
                                             group_by_subject=r.group.isChecked(), blind=r.blind.isChecked())
            request = replace(base, queries=(*base.queries, synthetic),
                              label=f"Sketch + SYNTHETIC probe ({output.label})")
            w.flow.shown_query_png = png
        job = w.searches.run(request)
        w.tabs.setCurrentWidget(w.results)
        w.results.set_busy(f"{job.title}…")
        return job

    def vary(self, output: GeneratedOutput, backend: str) -> Job | None:
        """Disguise variations; the cloud backend only when switched on, after the upload warning each time."""
        if self.busy:
            return None
        if backend != BACKEND_REPLICATE:
            return self._start_vary(output, remote=False)
        if not self.w.session.settings.cloud_backend_enabled:  # switched off since the list was filled
            self._refresh_cloud()
            self.panel.status.setText("The cloud backend is switched off in Settings; nothing was sent.")
            return None
        from engine.generate.variations import edits_for

        n = len(edits_for(self.attributes))
        box = QMessageBox(QMessageBox.Icon.Warning, "Upload to Replicate?",
                          f"The selected SYNTHETIC face will be uploaded to Replicate (replicate.com) for {n} edit(s). "
                          "It leaves this computer and is subject to the service's terms.",
                          QMessageBox.StandardButton.NoButton, self.w)
        box.setObjectName("CloudUploadWarning")
        upload = box.addButton("Upload and vary", QMessageBox.ButtonRole.AcceptRole)
        upload.setObjectName("ConfirmUpload")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda b: self._start_vary(output, remote=True) if b is upload else None)
        box.finished.connect(lambda _r: self._forget(box, "upload_warning"))
        self.upload_warning = box
        box.open()
        return None

    def _start_vary(self, output: GeneratedOutput, remote: bool, allow_cpu: bool = False) -> Job | None:
        if self.busy:
            return None
        if not remote:
            from engine.generate import model_set as ms

            if not ms.ModelLocator().available(ms.EDITOR):
                self.w.flow.show_guide("Variations need the InstructPix2Pix model, which is not installed yet.")
                return None
        engine, attrs, panel = self.engine, self.attributes, self.panel
        steps, size = panel.steps.value(), panel.size.value() // 8 * 8
        enabled = bool(self.w.session.settings.cloud_backend_enabled)

        def work(progress: Any, cancel: Any) -> tuple[list[GeneratedOutput], list[str]]:
            if remote:
                from engine.generate.replicate_backend import ReplicateBackend

                def confirmed(notice: Any) -> bool:  # the examiner confirmed on screen just before this run
                    log.warning("uploading to %s: %s", notice.service, notice.message)
                    return True

                backend = ReplicateBackend(enabled=enabled, confirm_upload=confirmed)
                try:
                    return engine.vary(output, attrs, backend, progress, cancel, self.output_ready.emit)
                finally:
                    backend.close()
            editor = engine.local_editor(allow_cpu, steps, size)
            return engine.vary(output, attrs, editor, progress, cancel, self.output_ready.emit)

        def done(res: tuple[list[GeneratedOutput], list[str]]) -> None:
            outputs, failed = res
            self.failures = failed
            self.panel.show_outputs(self._keep + outputs)
            extra = f" Failed: {'; '.join(failed)}" if failed else ""
            self.panel.status.setText(f"{len(outputs)} SYNTHETIC variation(s) of seed {output.seed}.{extra}")

        self._keep = list(panel.strip.outputs)
        where = "Replicate (cloud)" if remote else "this computer"
        return self._submit(f"Varying seed {output.seed} on {where}", work, done,
                            retry=None if remote else lambda: self._start_vary(output, False, allow_cpu=True))
