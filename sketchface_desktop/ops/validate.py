"""Validation operations: a run on solved cases in the engine lane; saving files and adopting a calibration.

The run reaches its gallery through the window's :class:`EngineSession` (the shared ``Gallery`` object)
and reuses the session's loaded face pipeline for the ArcFace baseline. The plots are drawn in the
worker too (matplotlib's Agg canvas), so the GUI thread only shows finished PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchface_desktop.ops.base import Op

if TYPE_CHECKING:
    from sketchface_desktop.engine_session import EngineSession


@dataclass(frozen=True)
class ValidationOutcome:
    """A finished validation: the engine's run, its JSON document and its plots (PNG bytes)."""

    run: Any
    doc: dict[str, Any]
    pngs: dict[str, bytes | None]


def run_validation(session: EngineSession, cases_dir: str | Path, gallery_id: str, encoder: str = "both",
                   group_keys: Sequence[str] = ("sex", "age_band")) -> Op[ValidationOutcome]:
    """Validate on the solved cases of ``cases_dir`` against a gallery (engine lane: models and the gallery)."""
    def work(progress: Any, cancel: Any) -> ValidationOutcome:
        from engine.validate.outputs import render_all

        run = session.validate(Path(cases_dir), gallery_id, encoder=encoder, group_keys=list(group_keys),
                               progress=progress, cancel=cancel)
        doc = run.to_dict()
        return ValidationOutcome(run, doc, render_all(doc))

    return Op("Validating on solved cases", work, lane="engine")


def save_outputs(outcome: ValidationOutcome, out_dir: str | Path) -> Op[dict[str, str]]:
    """Write validation.json, the plots and validation.pdf (io lane: files only)."""
    def work(_progress: Any, _cancel: Any) -> dict[str, str]:
        from engine.validate import write_outputs

        return write_outputs(outcome.run, Path(out_dir))

    return Op("Saving the validation report", work, lane="io", cancellable=False)


def adopt_calibration(outcome: ValidationOutcome, encoder: str) -> Op[str]:
    """Store the run's calibration for ``encoder``; results and reports then show what scores meant."""
    def work(_progress: Any, _cancel: Any) -> str:
        from engine.validate import fit, save

        return str(save(fit(outcome.run, encoder)))

    return Op("Storing the score calibration", work, lane="io", cancellable=False)
