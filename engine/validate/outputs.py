"""Files of a validation run: validation.json, cmc.png, groups.png, scores.png and validation.pdf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.fsutil import atomic_write_bytes
from engine.validate import calibration, plots
from engine.validate.report import render_pdf


def calibration_status(doc: dict[str, Any]) -> dict[str, str | None]:
    """Per encoder: which stored calibration front-ends use (None: none, so no claim is made)."""
    out: dict[str, str | None] = {}
    for name, enc in doc["encoders"].items():
        sha = enc["embedder"].get("model_sha256")
        cal = calibration.load(sha) if sha else None
        if cal is None:
            out[name] = None
        elif cal.validated_at == doc["created_at"] and cal.n_cases == enc["n"]:
            out[name] = f"This validation's calibration ({cal.n_cases} cases) is in use for this encoder."
        else:
            out[name] = (f"An earlier calibration is in use for this encoder: {cal.n_cases} cases, "
                         f"{cal.validated_at[:10]}, gallery {cal.gallery.get('name', '?')}.")
    return out


def render_all(doc: dict[str, Any]) -> dict[str, bytes | None]:
    """The three plots as PNG bytes (groups is None without group keys)."""
    return {"cmc": plots.cmc_png(doc), "groups": plots.groups_png(doc), "scores": plots.scores_png(doc)}


def write_outputs(run: Any, out_dir: Path | str) -> dict[str, str]:
    """Write the run's JSON, plots and PDF into ``out_dir`` (created); returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = run.to_dict()
    pngs = render_all(doc)
    written = {}
    for name, data in pngs.items():
        if data:
            atomic_write_bytes(out / f"{name}.png", data)
            written[name] = str(out / f"{name}.png")
    atomic_write_bytes(out / "validation.pdf", render_pdf(doc, pngs, calibration_status(doc)))
    written["pdf"] = str(out / "validation.pdf")
    atomic_write_bytes(out / "validation.json",
                       (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    written["json"] = str(out / "validation.json")
    return written
