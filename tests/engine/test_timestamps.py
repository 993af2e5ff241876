"""One timestamp format for new records; both forms already on disk still read, compare and verify."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import UTC, datetime

import numpy as np

from engine.cases import create_case, open_case
from engine.gallery import create_gallery
from engine.gallery.retention import Rule, plan_local
from engine.gallery.store import FaceRecord, PhotoRecord
from engine.timestamps import format_utc, parse_utc, same_instant, utc_now_iso

ONE_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_new_records_use_one_form_and_both_forms_read_as_the_same_instant() -> None:
    assert ONE_FORM.match(utc_now_iso())
    assert format_utc(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert parse_utc("2026-01-02T03:04:05Z") == parse_utc("2026-01-02T03:04:05+00:00")
    assert same_instant("2026-01-02T03:04:05Z", "2026-01-02T04:04:05+01:00")
    assert not same_instant("2026-01-02T03:04:05Z", "2026-01-02T03:04:06+00:00")  # negative control


def test_a_gallery_and_a_case_write_the_same_form() -> None:
    g = create_gallery("Stamps")
    created = g.store.meta()["created"]
    g.close()
    with create_case("2026-0101", "Stamps", user="alice") as case:
        ts = case.audit_entries()[-1].ts
    assert ONE_FORM.match(created) and ONE_FORM.match(ts)


def test_old_plus_zero_rows_are_kept_as_written_and_still_aged_by_retention() -> None:
    g = create_gallery("Old")
    for i in range(2):
        g.store.record_photo(PhotoRecord(f"/p/{i}.jpg", hashlib.sha256(b"%d" % i).hexdigest(), 1, 1, "ok"),
                             [FaceRecord((0, 0, 1, 1), np.zeros((5, 2), np.float32), 0.9, 0.8, 1.0, True,
                                         np.ones(512, np.float32) / np.sqrt(512), b"j")])
    path = g.store.path
    g.close()
    old = "2019-05-01T10:00:00+00:00"  # a row as earlier versions wrote it
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE photos SET added = ? WHERE path = '/p/0.jpg'", (old,))
    from engine.gallery import open_gallery

    with open_gallery("Old") as g:
        taken = plan_local(g, [Rule("seven years", older_than_days=365)], now=datetime(2026, 12, 1, tzinfo=UTC))
        assert [r.path for r in taken] == ["/p/0.jpg"]  # the old form compares with the new threshold
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT added FROM photos WHERE path = '/p/0.jpg'").fetchone()[0] == old  # not re-written


def test_a_case_written_before_keeps_verifying() -> None:
    with create_case("2026-0102", "Chain", user="alice") as case:
        case_id = case.case_id
    with open_case(case_id) as case:
        report = case.verify()
        assert report.ok, report.summary()
