"""The record screenshots of tools/screenshots.py: sign-off, report export, audit panel, re-run, blind review, archive.

Called with the window of ``screenshots.take`` once a case holds a search with decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def take_record(w: Any, out: Path, home: Path, save: Callable[[Any, Path], None],
                centre_over: Callable[[Any, Any], None], wait_idle: Callable[[Any], None],
                wait_for: Callable[[Callable[[], bool]], None], spin: Callable[[int], None]) -> None:
    """12_signoff.png … 17_archive_written.png."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    search_id = w.flow.shown_search_id
    dialog = w.dialogs.sign_off()
    dialog.examiner.setText("S. Lindqvist")
    dialog.role.setCurrentText("supervisor")
    dialog.statement.setPlainText("I reviewed search 1 and the three decisions recorded on it; I agree with them.")
    for i in range(dialog.searches.count()):
        item = dialog.searches.item(i)
        if item.data(Qt.ItemDataRole.UserRole) == search_id:
            item.setCheckState(Qt.CheckState.Checked)
    centre_over(dialog, w)
    save(dialog, out / "12_signoff.png")
    dialog.sign()
    wait_idle(w)

    report = w.dialogs.export_report()
    report.set_format("pdf")
    centre_over(report, w)
    report.export()
    wait_idle(w)
    wait_for(lambda: report.path is not None)
    save(report, out / "13_report_export.png")
    report.accept()

    w.audit_dock.show()
    w.audit_dock.raise_()
    w.resizeDocks([w.audit_dock], [230], Qt.Orientation.Vertical)
    w.audit.refresh()
    wait_idle(w)
    spin(400)
    save(w, out / "14_audit_panel.png")
    w.audit_dock.hide()  # the other shots show the default layout
    w.jobs_dock.raise_()
    w.resizeDocks([w.jobs_dock], [120], Qt.Orientation.Vertical)

    rerun = w.dialogs.rerun_search(search_id)
    wait_idle(w)
    wait_for(lambda: rerun.report is not None and rerun.right.rowCount() > 0)
    centre_over(rerun, w)
    save(rerun, out / "15_rerun.png")
    rerun.accept()

    w.results.blind.click()
    w.flow.search_sketch()
    wait_idle(w)
    wait_for(lambda: w.results.blind_banner.isVisible())
    for i in (0, 1):
        w.flow.decide(w.results_model.row(i), "excluded", "")
        wait_idle(w)
    w.tabs.setCurrentWidget(w.results)
    spin(600)
    save(w, out / "16_blind_review.png")
    w.results.ranked.click()

    w.dialogs.export_archive(str(home / "case_2026-0417.zip"))
    wait_idle(w)
    box = w.findChild(QMessageBox, "ArchiveWritten")
    if box is not None:
        centre_over(box, w)
        save(box, out / "17_archive_written.png")
        box.accept()
