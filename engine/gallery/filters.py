"""Metadata filters for search (``sex=F``, ``birth_year>=1980``, ``quality>=0.5``) compiled to SQL.

Why SQL: the gallery's SQLite store already holds every face's photo metadata, so a filter becomes
one indexed query returning the allowed face ids; search then decides between an exact numpy scan
over those faces (selective filters) and hnswlib's filter callback (loose ones).
Faces whose photo lacks the filtered field never match (SQL NULL semantics), so ``sex!=M`` means
"known and not M".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import GalleryError

OPS = (">=", "<=", "!=", "=", ">", "<")
_SQL_OP = {"=": "=", "!=": "!=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
_PATTERN = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|!=|==|=|>|<)\s*(.*?)\s*$")

# key -> (SQL column, type): text, int, real or bool.
FIELDS: dict[str, tuple[str, str]] = {
    "subject_id": ("m.subject_id", "text"),
    "sex": ("m.sex", "text"),
    "birth_year": ("m.birth_year", "int"),
    "source": ("m.source", "text"),
    "date": ("m.date", "text"),
    "quality": ("f.quality", "real"),
    "det_score": ("f.det_score", "real"),
    "blur": ("f.blur", "real"),
    "primary": ("f.is_primary", "bool"),
    "photo_sha256": ("p.sha256", "text"),
    "path": ("p.path", "text"),
    "face_id": ("f.id", "int"),  # faces added after a watch last ran (engine.workstation.watch)
}
# Scars, marks and tattoos: ``tattoo=rose`` matches a tattoo whose location or description contains
# "rose" (case-insensitive); ``tattoo=*`` any tattoo; ``tattoo!=...`` faces with no such annotation.
SMT_KEYS = ("scar", "mark", "tattoo")
_SMT_SQL = ("EXISTS (SELECT 1 FROM json_each(json_extract(m.extras, '$.smt')) j WHERE "
            "json_extract(j.value, '$.kind') = ? AND (? = '*' OR instr(lower(json_extract(j.value, '$.location') "
            "|| ' ' || json_extract(j.value, '$.description')), lower(?)) > 0))")
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


@dataclass(frozen=True)
class Filter:
    """One condition ``key op value``; keys outside :data:`FIELDS` address the CSV's free extras."""

    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def parse_filter(text: str | Filter) -> Filter:
    """Parse ``key=value`` / ``key>=value`` etc.; a :class:`GalleryError` says what is wrong."""
    if isinstance(text, Filter):
        return text
    m = _PATTERN.match(text)
    if not m or not m.group(3):
        raise GalleryError(f"Cannot read the filter {text!r}.",
                           hint="Write key=value, key!=value, key>=value, key<=value, key>value or key<value "
                                "(e.g. sex=F, birth_year>=1980, quality>=0.5).")
    key, op, value = m.group(1), m.group(2), m.group(3)
    op = "=" if op == "==" else op
    if key == "sex":
        value = value.upper()
    _coerce(Filter(key, op, value))  # validate now, not at query time
    return Filter(key, op, value)


def parse_filters(items: Sequence[str | Filter]) -> list[Filter]:
    return [parse_filter(x) for x in items]


def _coerce(f: Filter) -> Any:
    kind = FIELDS.get(f.key, ("", "extra"))[1]
    try:
        if kind == "int":
            return int(f.value)
        if kind == "real":
            return float(f.value)
    except ValueError:
        raise GalleryError(f"Filter {f}: {f.key} takes a number, not {f.value!r}.") from None
    if kind == "bool":
        if f.op not in ("=", "!="):
            raise GalleryError(f"Filter {f}: {f.key} is yes/no; use = or !=.")
        low = f.value.lower()
        if low not in _TRUE | _FALSE:
            raise GalleryError(f"Filter {f}: {f.key} takes yes/no (1/0), not {f.value!r}.")
        return 1 if low in _TRUE else 0
    return f.value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_sql(filters: list[Filter]) -> tuple[str, list[Any]]:
    """A WHERE clause over ``faces f JOIN photos p LEFT JOIN photo_meta m`` and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for f in filters:
        op = _SQL_OP[f.op]
        if f.key in SMT_KEYS:
            if f.op not in ("=", "!="):
                raise GalleryError(f"Filter {f}: {f.key} takes = or != (e.g. {f.key}=rose, {f.key}=*).")
            clauses.append(("" if f.op == "=" else "NOT ") + _SMT_SQL)
            params += [f.key, f.value, f.value]
        elif f.key in FIELDS:
            column = FIELDS[f.key][0]
            clauses.append(f"{column} {op} ?")
            params.append(_coerce(f))
        elif f.op in ("=", "!=") or not _is_number(f.value):
            clauses.append(f"json_extract(m.extras, ?) {op} ?")
            params += [f'$."{f.key}"', f.value]
        else:  # ordering on a numeric extra compares numbers, not strings
            clauses.append(f"CAST(json_extract(m.extras, ?) AS REAL) {op} ?")
            params += [f'$."{f.key}"', float(f.value)]
    return (" AND ".join(clauses) or "1"), params
