"""ExaminersPage: Settings > Examiners — the profiles (list, add, use, export key) and the trust list.

Every write is signed by the acting profile's key, so this page is where an examiner is added and
chosen, where a profile's public key is exported for another workstation, and where keys from other
workstations are accepted (one by one, or from the agency's file) or revoked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.examiner_profiles import ExaminerProfiles
from sketchface_desktop.ops import settings as settings_ops
from sketchface_desktop.views.ui import button, label


def _table(name: str, columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


class ExaminersPage(QWidget):
    """The Examiners page of the settings dialog (no signals: changes go through :class:`ExaminerProfiles`)."""

    def __init__(self, profiles: ExaminerProfiles, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ExaminersPage")
        self.profiles = profiles
        self.table = _table("ExaminerProfiles", ("", "Name", "Identifier", "Key fingerprint", "Key kept in"))
        self.trust = _table("ExaminerTrustList", ("Name", "Identifier", "Key fingerprint", "State", "Source"))
        self.message = label("", "subtle", True)
        self.message.setObjectName("ExaminersMessage")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        add, use, export = button("Add examiner…", "case-new"), button("Use selected", "verify"), \
            button("Export key…", "export")
        add.clicked.connect(lambda: self.add_examiner())
        use.clicked.connect(lambda: self.use_selected())
        export.clicked.connect(lambda: self.export_key())
        accept, agency, revoke = button("Accept key file…", "import-scan"), \
            button("Import agency file…", "open"), button("Revoke…", "excluded")
        accept.clicked.connect(lambda: self.accept_key())
        agency.clicked.connect(lambda: self.import_agency())
        revoke.clicked.connect(lambda: self.revoke_selected())
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for b in (add, use, export):
            row1.addWidget(b)
        row1.addStretch(1)
        for b in (accept, agency, revoke):
            row2.addWidget(b)
        row2.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(label("Examiner profiles", "heading"))
        layout.addWidget(label("Each examiner signs their own decisions, sign-offs and reports with their own "
                               "key. The acting one (●) is also chosen in the status bar.", "subtle", True))
        layout.addWidget(self.table, 1)
        layout.addLayout(row1)
        layout.addWidget(label("Trusted examiner keys", "heading"))
        layout.addWidget(label("Keys of examiners on other workstations (reviewers returning review files). "
                               "Verification and reports label each signature known examiner, unknown key or "
                               "revoked.", "subtle", True))
        layout.addWidget(self.trust, 1)
        layout.addLayout(row2)
        layout.addWidget(self.message)
        profiles.profiles_changed.connect(lambda _p: self.fill())
        profiles.acting_changed.connect(lambda _p: self.fill())
        self.fill()

    def fill(self) -> None:
        """Show the profiles and the trust list as they are now."""
        acting = self.profiles.acting.fingerprint if self.profiles.acting is not None else ""
        self.table.setRowCount(len(self.profiles.profiles))
        for r, p in enumerate(self.profiles.profiles):
            cells = ("●" if p.fingerprint == acting else "", p.name, p.identifier, p.fingerprint,
                     "OS keyring" if p.store == "keyring" else "passphrase key file")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, p.fingerprint)
                self.table.setItem(r, c, item)
        keys, why = settings_ops.trusted_examiner_keys()
        if why:
            self.message.setText(why)
        self.trust.setRowCount(len(keys))
        for r, k in enumerate(keys):
            state = f"REVOKED {k.get('revoked_at')}" if k.get("revoked_at") else "trusted"
            cells = (str(k.get("name")), str(k.get("identifier")), str(k.get("fingerprint")), state,
                     f"{k.get('source')}, accepted by {k.get('accepted_by')} at {k.get('accepted_at')}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, k.get("fingerprint"))
                self.trust.setItem(r, c, item)

    @staticmethod
    def _selected(table: QTableWidget) -> str | None:
        rows = table.selectionModel().selectedRows()
        item = table.item(rows[0].row(), 0) if rows else None
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def _say(self, text: str) -> None:
        self.message.setText(text)

    # -- profiles ------------------------------------------------------------------------------
    def add_examiner(self, name: str | None = None, identifier: str | None = None,
                     passphrase: str | None = None) -> str:
        """Add a profile (asked for when not given); '' when added, else why not (also shown on the page)."""
        if name is None:
            from sketchface_desktop.views.first_run import ExaminerSetupDialog

            dialog = ExaminerSetupDialog(self.profiles, self, first_run=False)
            dialog.exec()
            return "" if dialog.result() else "cancelled"
        why = self.profiles.add(name, identifier or "", passphrase)
        self._say(f"Not added: {why}" if why else f"Added {name} ({identifier}); now working as them.")
        return why

    def use_selected(self, passphrase: str | None = None) -> str:
        fp = self._selected(self.table)
        if fp is None:
            self._say("Select a profile first.")
            return "no selection"
        if passphrase is None and not self.profiles.key_ready(fp):
            text, ok = QInputDialog.getText(self, "Examiner key", "Passphrase for this examiner's key:",
                                            QLineEdit.EchoMode.Password)
            if not ok:
                return "cancelled"
            passphrase = text
        why = self.profiles.switch(fp, passphrase)
        acting = self.profiles.acting
        self._say(f"Not changed: {why}" if why else f"Now working as {acting.name} ({acting.identifier}).")
        return why

    def export_key(self, path: str | None = None) -> Path | None:
        """Write the selected (else the acting) profile's public key for another workstation's trust list."""
        fp = self._selected(self.table) or (self.profiles.acting.fingerprint if self.profiles.acting else None)
        if fp is None:
            self._say("Select a profile first.")
            return None
        data: dict[str, Any] = settings_ops.export_examiner_key(fp)
        if path is None:
            path = QFileDialog.getSaveFileName(self, "Export examiner key", f"{data['identifier']}.key.json",
                                               "Examiner keys (*.json)")[0]
        if not path:
            return None
        out = Path(path)
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        self._say(f"Wrote the public key of {data['name']} ({data['identifier']}), fingerprint "
                  f"{data['fingerprint']}, to {out}. Compare the fingerprint with the receiver by phone.")
        return out

    # -- trust list ----------------------------------------------------------------------------
    def accept_key(self, path: str | None = None) -> str:
        path = path or QFileDialog.getOpenFileName(self, "Accept examiner key", "", "Examiner keys (*.json)")[0]
        if not path:
            return "cancelled"
        why = settings_ops.accept_examiner_key(Path(path))
        self._say(f"Not accepted: {why}" if why else f"Accepted the key in {Path(path).name}.")
        self.fill()
        return why

    def import_agency(self, path: str | None = None) -> str:
        path = path or QFileDialog.getOpenFileName(self, "Import agency key file", "", "Agency files (*.json)")[0]
        if not path:
            return "cancelled"
        n, why = settings_ops.import_agency_keys(Path(path))
        self._say(f"Not imported: {why}" if why else f"Accepted {n} examiner key(s) from {Path(path).name}.")
        self.fill()
        return why

    def revoke_selected(self, reason: str | None = None) -> str:
        fp = self._selected(self.trust) or self._selected(self.table)
        if fp is None:
            self._say("Select a key (trusted key or profile) first.")
            return "no selection"
        if reason is None:
            reason, ok = QInputDialog.getText(self, "Revoke examiner key",
                                              f"Why is key {fp[:16]} revoked? Its later signatures become findings.")
            if not ok:
                return "cancelled"
        why = settings_ops.revoke_examiner_key(fp, reason)
        self._say(f"Not revoked: {why}" if why else f"Revoked key {fp[:16]} from now on ({reason}).")
        self.profiles.refresh()
        return why
