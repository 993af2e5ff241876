"""Per-photo metadata from a CSV file (subject id, sex, birth year, source, date, free extras).

Why all-or-nothing by default: metadata drives search filters and per-subject grouping; a file that
half-imports (a shifted column, a typo'd year) silently changes which candidates an examiner sees.
Every row is validated first; any bad row aborts the import with a list of row numbers and reasons,
unless the caller asks to import the good rows and skip the bad ones.

Format: a header row; a ``path`` column (absolute, or relative to the CSV's folder; a bare file name
is accepted when it is unique in the gallery) or a ``sha256`` column identifies the photo; known
columns are ``subject_id``, ``sex`` (M/F/X), ``birth_year``, ``source``, ``date`` (ISO 8601); every
other column is kept as a free-text extra and can be filtered on by its name. Columns ``scars``,
``marks`` and ``tattoos`` take ``body location: description`` entries separated by ``;``, each with an
optional photo region ``@x,y,w,h``; they are filtered with ``--filter tattoo=rose`` (``tattoo=*``: any).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import GalleryError
from engine.gallery.store import MetaRecord

if TYPE_CHECKING:
    from engine.gallery.gallery import Gallery

_ALIASES = {
    "path": "path", "file": "path", "filename": "path", "image": "path",
    "sha256": "sha256",
    "subject_id": "subject_id", "subject": "subject_id", "person_id": "subject_id",
    "sex": "sex", "gender": "sex",
    "birth_year": "birth_year", "year_of_birth": "birth_year", "yob": "birth_year",
    "source": "source", "date": "date",
    "scars": "scars", "scar": "scars", "marks": "marks", "mark": "marks", "tattoos": "tattoos", "tattoo": "tattoos",
}
# Scars, marks and tattoos (column -> kind), kept as one JSON list in the extra ``smt`` that --filter reads.
SMT_COLUMNS = {"scars": "scar", "marks": "mark", "tattoos": "tattoo"}
_SEX = {"m": "M", "male": "M", "f": "F", "female": "F", "x": "X", "other": "X", "unknown": None, "u": None}


class MetadataError(GalleryError):
    """A metadata CSV has bad rows; ``errors`` lists (row number, reason) for every one of them."""

    def __init__(self, message: str, errors: list[tuple[int, str]], hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.errors = errors


@dataclass
class MetadataReport:
    rows: int = 0
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GalleryError(f"Cannot read the metadata file {path}: {exc}.",
                           hint="Save it as UTF-8 CSV with a header row.") from exc
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    if not rows:
        raise GalleryError(f"The metadata file {path} is empty.", hint="It needs a header row and one row per photo.")
    return [h.strip() for h in rows[0]], rows[1:]


def _columns(header: list[str], path: Path) -> list[str]:
    names = [_ALIASES.get(h.lower().replace(" ", "_"), h) for h in header]
    seen = [n for n in names if names.count(n) > 1]
    if seen:
        raise GalleryError(f"The metadata file {path} has the column '{seen[0]}' twice.")
    if "path" not in names and "sha256" not in names:
        raise GalleryError(f"The metadata file {path} has no 'path' (or 'sha256') column.",
                           hint=f"Its header is: {', '.join(header)}.")
    if any(not n for n in names):
        raise GalleryError(f"The metadata file {path} has a column without a name.")
    return names


def _parse(values: dict[str, str]) -> MetaRecord:
    """One row's fields, validated; ``ValueError`` carries the reason."""
    sex_raw = values.get("sex", "").strip()
    if sex_raw and sex_raw.lower() not in _SEX:
        raise ValueError(f"sex must be M, F or X, not {sex_raw!r}")
    year_raw = values.get("birth_year", "").strip()
    year = None
    if year_raw:
        if not year_raw.isdigit() or not 1880 <= int(year_raw) <= dt.date.today().year:
            raise ValueError(f"birth_year must be a year between 1880 and now, not {year_raw!r}")
        year = int(year_raw)
    date_raw = values.get("date", "").strip()
    if date_raw:
        try:
            date_raw = dt.date.fromisoformat(date_raw[:10]).isoformat() + date_raw[10:]
            if len(date_raw) > 10:
                dt.datetime.fromisoformat(date_raw)
        except ValueError:
            raise ValueError(f"date must be ISO 8601 (YYYY-MM-DD), not {values.get('date')!r}") from None
    extras = {k: v.strip() for k, v in values.items() if k not in _ALIASES.values() and v.strip()}
    smt = [m for column, kind in SMT_COLUMNS.items() for m in parse_smt(kind, values.get(column, ""))]
    if smt:
        extras["smt"] = json.dumps(smt, sort_keys=True, ensure_ascii=False)
    return MetaRecord(subject_id=values.get("subject_id", "").strip() or None,
                      sex=_SEX.get(sex_raw.lower()) if sex_raw else None, birth_year=year,
                      source=values.get("source", "").strip() or None, date=date_raw or None, extras=extras)


def parse_smt(kind: str, cell: str) -> list[dict[str, str]]:
    """``left forearm: rose @10,20,30,40; neck: star`` -> annotations of one kind; ValueError says what is wrong."""
    out = []
    for item in (x.strip() for x in cell.split(";")):
        if not item:
            continue
        body, _, region = item.partition("@")
        location, _, description = body.partition(":")
        if not location.strip():
            raise ValueError(f"a {kind} needs its body location ('location: description'), not {item!r}")
        entry = {"kind": kind, "location": location.strip(), "description": description.strip()}
        if region.strip():
            parts = region.split(",")
            if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
                raise ValueError(f"a {kind}'s photo region is @x,y,w,h in pixels, not @{region.strip()!r}")
            entry["region"] = ",".join(p.strip() for p in parts)
        out.append(entry)
    return out


def import_metadata(gallery: Gallery, csv_path: Path, skip_bad: bool = False) -> MetadataReport:
    """Attach CSV metadata to the gallery's photos (replacing earlier metadata of those photos).

    Raises:
        MetadataError: some rows are bad and ``skip_bad`` is False (nothing is imported then).
    """
    header, rows = _read_rows(csv_path)
    names = _columns(header, csv_path)
    photos = gallery.store.photo_paths()
    by_path = {p: i for i, p in photos}
    by_name: dict[str, list[int]] = {}
    for i, p in photos:
        by_name.setdefault(Path(p).name, []).append(i)
    by_sha = {s: i for i, s in gallery.store.photo_sha256s()}
    report = MetadataReport(rows=len(rows))
    good: list[tuple[int, MetaRecord]] = []
    first_row: dict[int, int] = {}
    for n, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            report.rows -= 1
            continue
        if len(row) != len(names):
            report.errors.append((n, f"has {len(row)} fields, the header has {len(names)}"))
            continue
        values = dict(zip(names, row, strict=True))
        photo_id, why = _locate(values, csv_path.parent, by_path, by_name, by_sha)
        if photo_id is None:
            report.errors.append((n, why))
            continue
        if photo_id in first_row:
            report.errors.append((n, f"the same photo as row {first_row[photo_id]}"))
            continue
        try:
            record = _parse(values)
        except ValueError as exc:
            report.errors.append((n, str(exc)))
            continue
        first_row[photo_id] = n
        good.append((photo_id, record))
    if report.errors and not skip_bad:
        listed = "; ".join(f"row {n}: {why}" for n, why in report.errors[:10])
        more = f" (and {len(report.errors) - 10} more)" if len(report.errors) > 10 else ""
        raise MetadataError(f"{len(report.errors)} bad row(s) in {csv_path.name}, nothing imported: {listed}{more}.",
                            report.errors, hint="Fix them, or import the good rows only (--skip-bad).")
    with gallery.write_lock:
        gallery.store.upsert_metadata(good)
    report.imported = len(good)
    return report


def _locate(values: dict[str, str], base: Path, by_path: dict[str, int], by_name: dict[str, list[int]],
            by_sha: dict[str, int]) -> tuple[int | None, str]:
    sha = values.get("sha256", "").strip().lower()
    raw = values.get("path", "").strip()
    if raw:
        candidate = Path(raw).expanduser()
        full = str((candidate if candidate.is_absolute() else base / candidate).resolve())
        if full in by_path:
            return by_path[full], ""
        named = by_name.get(candidate.name, [])
        if len(named) == 1 and candidate.name == raw:
            return named[0], ""
        if len(named) > 1 and candidate.name == raw:
            return None, f"several photos are named {raw!r}; give its folder too"
    if sha:
        if sha in by_sha:
            return by_sha[sha], ""
        return None, f"no photo in the gallery has SHA-256 {sha[:16]}…"
    if not raw:
        return None, "no path or sha256 given"
    return None, f"no photo in the gallery at {raw!r} (import the photo first)"
