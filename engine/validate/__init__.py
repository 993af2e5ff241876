"""Validation: how well search works on the agency's own solved cases, calibration, and benchmarks.

Public API (numpy only at import; matplotlib and fpdf2 load when plots or reports are drawn)::

    run = validate("cases/", "Mugshots", encoder="both", progress=cb, cancel=token)
    run.to_dict()                                  # JSON: CMC, hit rates with 95 % intervals, groups
    write_outputs(run, "out/")                     # validation.json, PNG plots, validation.pdf
    save(fit(run, "trained"))                      # adopt the calibration for that encoder
    calibration_note(0.31, 3, manifest["embedder"])  # "In validation on 412 solved cases, ..." or None
"""

from pathlib import Path

from engine.validate.calibration import (
    NO_CALIBRATION,
    Calibration,
    calibration_for,
    calibration_note,
    fit,
    installed_encoder_sha256,
    load,
    save,
)
from engine.validate.cases import ResolvedCase, SolvedCase, ValidationError, read_cases, resolve
from engine.validate.outputs import write_outputs as _write
from engine.validate.ranking import GalleryMatrix, rank_queries, subject_key
from engine.validate.run import ValidationRun, validate, validate_vectors
from engine.validate.stats import REPORT_RANKS, Rate, cmc, hit_rates, wilson


def write_outputs(run: ValidationRun, out_dir: str | Path) -> dict[str, str]:
    """Write validation.json, the PNG plots and validation.pdf into ``out_dir``; returns name -> path."""

    return _write(run, out_dir)


__all__ = [
    "NO_CALIBRATION", "REPORT_RANKS", "Calibration", "calibration_for", "installed_encoder_sha256", "GalleryMatrix", "Rate", "ResolvedCase", "SolvedCase", "ValidationError",
    "ValidationRun", "calibration_note", "cmc", "fit", "hit_rates", "load", "rank_queries", "read_cases",
    "resolve", "save", "subject_key", "validate", "validate_vectors", "wilson", "write_outputs",
]
