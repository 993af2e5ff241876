"""ServerDialog (Tools > Gallery servers): add, test and remove the PostgreSQL servers that hold shared galleries.

The dialog gathers a profile (name, URL, unit, password) and saves it through
:mod:`sketchface_desktop.ops.servers`: the password goes to the OS keyring, never to a file; where no
keyring exists, the dialog shows the engine's message saying what to do instead. "Test" connects to
the server, so it runs as an op in the io lane of the window's job hub, never in the GUI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.ops import servers as server_ops
from sketchface_desktop.views.ui import button, primary_button

if TYPE_CHECKING:
    from sketchface_desktop.ops.base import Runner

URL_HELP = ("postgresql://USER@HOST:5432/DATABASE (add ?sslmode=verify-full&sslrootcert=/path/ca.pem for TLS), "
            "or postgresql://USER@/DATABASE?host=/socket/folder for a Unix socket.")


class ServerDialog(QDialog):
    """The list of server profiles with a form to add one, and Test / Remove for the selected one.

    Signals:
        profiles_changed(): a profile was added or removed (gallery lists can refresh).
    """

    profiles_changed = Signal()

    def __init__(self, runner: Runner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Gallery servers")
        self.runner = runner
        self.list = QListWidget()
        self.name = QLineEdit()
        self.url = QLineEdit()
        self.url.setPlaceholderText("postgresql://examiner@db.agency.example:5432/galleries")
        self.url.setToolTip(URL_HELP)
        self.unit = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("URL", self.url)
        form.addRow("Unit", self.unit)
        form.addRow("Password", self.password)
        self.save_button = primary_button("Save profile")
        self.test_button = button("Test")
        self.remove_button = button("Remove")
        self.save_button.clicked.connect(self.save)
        self.test_button.clicked.connect(self.test)
        self.remove_button.clicked.connect(self.remove)
        row = QHBoxLayout()
        for b in (self.save_button, self.test_button, self.remove_button):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Servers"))
        layout.addWidget(self.list)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.list.currentTextChanged.connect(self._show)
        self.refresh()

    def refresh(self) -> None:
        """Reload the profiles from the config folder (a file read: cheap)."""
        self.list.clear()
        self._profiles, problem = server_ops.read_profiles()
        if problem:  # a broken file: say so, keep the dialog usable
            self.status.setText(problem)
        for name in sorted(self._profiles):
            self.list.addItem(name)

    def _show(self, name: str) -> None:
        p = self._profiles.get(name)
        if p is not None:
            self.name.setText(p.name)
            self.url.setText(p.url)
            self.unit.setText(p.unit)
            self.password.clear()

    def save(self) -> None:
        """Save the form as a profile; the password (if typed) goes to the OS keyring."""
        outcome = server_ops.save_profile(self.name.text().strip(), self.url.text().strip(),
                                          self.unit.text().strip(), self.password.text() or None)
        self.status.setText(outcome.text)
        if not outcome.ok:
            return
        self.password.clear()
        self.refresh()
        self.profiles_changed.emit()

    def remove(self) -> None:
        """Remove the selected profile (or the one named in the form) and its keyring password."""
        name = self.list.currentItem().text() if self.list.currentItem() else self.name.text().strip()
        outcome = server_ops.remove_profile(name)
        self.status.setText(outcome.text)
        if not outcome.ok:
            return
        self.refresh()
        self.profiles_changed.emit()

    def test(self) -> None:
        """Connect in the background and show versions, TLS and the user's units."""
        profile, problem = server_ops.find_profile(self.name.text().strip())
        if profile is None:
            self.status.setText(problem)
            return
        self.status.setText(f"Connecting to {profile.where}…")
        op = server_ops.check_server(profile).success(self._tested)
        op.failure(lambda exc: self.status.setText(str(exc)))
        if self.runner is None:  # no job hub (a test, or a stand-alone dialog): run it here
            try:
                self._tested(server_ops.connection_report(profile))
            except Exception as exc:
                self.status.setText(str(exc))
            return
        op.run(self.runner)

    def _tested(self, report: dict[str, Any]) -> None:
        units = ", ".join(report["units"]) or "none"
        ok = report["pgvector"] and report["schema_installed"]
        self.status.setText(f"{'OK' if ok else 'Reached, but not ready'}: PostgreSQL {report['server_version']}, "
                            f"pgvector {report['pgvector'] or 'missing'}, schema "
                            f"{'installed' if report['schema_installed'] else 'missing'}, TLS "
                            f"{'on' if report['tls'] else 'off'}; your units: {units}.")


def open_server_dialog(window: Any) -> None:
    """Show the dialog for a main window (uses its job hub for the connection test)."""
    ServerDialog(getattr(window, "hub", None), window).exec()
