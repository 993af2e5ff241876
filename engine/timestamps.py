"""The one timestamp format the engine writes: UTC, whole seconds, ``YYYY-MM-DDTHH:MM:SSZ``.

Why one module: cases wrote ``…Z`` and galleries ``…+00:00``, so two records of the same moment compared
unequal as text and every reader had to know both. New writes use :func:`utc_now_iso` only. Records
already on disk keep the text they were written with (hashes and signatures cover that text, so it is
never re-formatted); :func:`parse_utc` reads both forms, and :func:`same_instant` compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_utc(moment: datetime) -> str:
    """``moment`` (aware, or naive meaning UTC) in the one format: whole seconds, ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(FORMAT)


def utc_now_iso() -> str:
    """Now, in the one format every new record is written with."""
    return format_utc(datetime.now(UTC))


def parse_utc(text: str) -> datetime:
    """An aware UTC datetime from either form on disk (``…Z`` or ``…+00:00``, with or without fractions).

    Raises ``ValueError`` for text that is not an ISO 8601 timestamp; a timestamp without a zone is read
    as UTC (the engine has never written local times).
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def same_instant(a: str, b: str) -> bool:
    """Whether two stored timestamps name the same moment, whichever of the two forms each uses."""
    return parse_utc(a) == parse_utc(b)


__all__ = ["FORMAT", "format_utc", "parse_utc", "same_instant", "utc_now_iso"]
