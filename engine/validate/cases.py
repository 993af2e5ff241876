"""The solved-cases folder a validation reads, and how each case's true subject is found in the gallery.

Layout (``CASES_DIR``)::

    CASES_DIR/
      sketches/          one sketch per solved case; the file stem names the case (case017.png)
                         (without a sketches/ folder, the images directly in CASES_DIR are the sketches)
      truth.csv          optional: columns case,subject_id (the subject id as in the gallery's metadata)
      photos/            optional: photos/<case>.<ext>, a photo of the true person that is in the gallery
                         (matched by SHA-256: its subject id, or that face alone, is the true match)

The true subject of a case is taken from, in order: its ``truth.csv`` row, its ``photos/`` file, or a
gallery subject id equal to the sketch's file stem. A case whose truth is not in the gallery is left
out of every figure and listed with the reason, never guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.faces.decode import IMAGE_SUFFIXES
from engine.fsutil import sha256_file
from engine.validate.ranking import GalleryMatrix, subject_key


class ValidationError(EngineError):
    """A validation input (cases folder, pairs file, truth table) cannot be used as given."""


@dataclass(frozen=True)
class SolvedCase:
    """One sketch with the way its true subject is named (subject id or photo file)."""

    name: str
    sketch: Path
    subject_id: str | None = None
    photo: Path | None = None


@dataclass(frozen=True)
class ResolvedCase:
    """A case whose true subject is in the gallery: ``target`` is its grouping key there."""

    case: SolvedCase
    target: str
    truth: str  # "csv", "photo" or "stem"


def image_files(folder: Path) -> dict[str, Path]:
    """Image files of a folder by file stem (two images with one stem are refused)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            if p.stem in out:
                raise ValidationError(f"Two images in {folder} share the name '{p.stem}' ({out[p.stem].name}, "
                                      f"{p.name}).", hint="Give every case one sketch with a unique file name.")
            out[p.stem] = p
    return out


def _truth_csv(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Cannot read {path}: {exc}.", hint="Save it as UTF-8 CSV.") from exc
    rows = list(csv.DictReader(text.splitlines()))
    if rows and not {"case", "subject_id"} <= {k.strip() for k in rows[0] if k}:
        raise ValidationError(f"{path} needs the columns case,subject_id.",
                              hint=f"Its header is: {', '.join(k for k in rows[0] if k)}.")
    out: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        case, subject = row.get("case", ""), row.get("subject_id", "")
        if not case or not subject:
            raise ValidationError(f"{path}, line {n}: both case and subject_id are needed.")
        stem = Path(case).stem if Path(case).suffix.lower() in IMAGE_SUFFIXES else case
        if stem in out and out[stem] != subject:
            raise ValidationError(f"{path}, line {n}: case '{stem}' is given two subjects.")
        out[stem] = subject
    return out


def read_cases(cases_dir: Path | str) -> list[SolvedCase]:
    """The solved cases of ``cases_dir`` (see the module docstring for the layout)."""
    root = Path(cases_dir)
    if not root.is_dir():
        raise ValidationError(f"No cases folder at {root}.", hint="Give a folder holding sketches/ (see --help).")
    sketch_dir = root / "sketches" if (root / "sketches").is_dir() else root
    sketches = image_files(sketch_dir)
    if not sketches:
        raise ValidationError(f"No sketch images in {sketch_dir}.",
                              hint="Put one sketch per solved case in CASES_DIR/sketches/.")
    truth = _truth_csv(root / "truth.csv") if (root / "truth.csv").is_file() else {}
    photos = image_files(root / "photos") if (root / "photos").is_dir() else {}
    unknown = sorted(set(truth) - set(sketches))
    if unknown:
        raise ValidationError(f"truth.csv names cases without a sketch: {', '.join(unknown[:5])}.",
                              hint="The case column holds the sketch's file name (with or without extension).")
    return [SolvedCase(stem, path, truth.get(stem), photos.get(stem)) for stem, path in sketches.items()]


def resolve(cases: list[SolvedCase], matrix: GalleryMatrix) -> tuple[list[ResolvedCase], list[dict[str, str]]]:
    """Find each case's true subject in the gallery; returns (resolved cases, unresolved with reasons)."""
    done: list[ResolvedCase] = []
    skipped: list[dict[str, str]] = []
    for c in cases:
        if c.subject_id is not None:
            if c.subject_id in matrix.subject_ids:
                done.append(ResolvedCase(c, subject_key(c.subject_id, 0), "csv"))
            else:
                skipped.append({"case": c.name, "reason": f"subject id '{c.subject_id}' is not in the gallery"})
        elif c.photo is not None:
            faces = matrix.photo_faces.get(sha256_file(c.photo))
            if not faces:
                skipped.append({"case": c.name, "reason": f"photo {c.photo.name} is not in the gallery (by SHA-256) "
                                                          "or has no face there"})
                continue
            done.append(ResolvedCase(c, _key_of_face(matrix, faces[0]), "photo"))
        elif c.name in matrix.subject_ids:
            done.append(ResolvedCase(c, subject_key(c.name, 0), "stem"))
        else:
            skipped.append({"case": c.name, "reason": "no truth.csv row, no photo, and no gallery subject "
                                                      "with this name"})
    return done, skipped


def _key_of_face(matrix: GalleryMatrix, face_id: int) -> str:
    info = matrix.gallery.store.face_infos([face_id])[face_id]
    return subject_key(info.subject_id, face_id)
