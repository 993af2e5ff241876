"""FirstRunGuide: what is missing before the workstation can search; ExaminerSetupDialog: who is working.

Shown on first start (and whenever a feature finds a model missing) instead of a traceback: the
examiner learns which model each feature needs, where it goes and how to install it offline, while
drawing and case work stay usable without any model. Before anything is recorded the window must know
who is working: with no examiner profile yet, :class:`ExaminerSetupDialog` asks for a display name,
an agency identifier and (where no OS keyring holds keys) a passphrase for the key file.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.examiner_profiles import ExaminerProfiles
from sketchface_desktop.ops.models import MissingModel, missing_models
from sketchface_desktop.views import assets
from sketchface_desktop.views.ui import button, label, primary_button


class FirstRunGuide(QDialog):
    """The guide window.

    Signals:
        open_models(): the user wants the Models page of the settings.
        import_requested(): the user wants to import a model bundle now.
        demo_requested(): the user wants to try the workstation with the demo data (a separate home).
    """

    open_models = Signal()
    import_requested = Signal()
    demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None, reason: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("FirstRunGuide")
        self.setWindowTitle("Getting started with SketchFace")
        self.missing = missing_models()
        head = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(assets.svg_pixmap("app", 56))
        titles = QVBoxLayout()
        titles.addWidget(label("Welcome to SketchFace Workstation", "heading"))
        intro = ("You can draw sketches and open cases right away. To search galleries, SketchFace needs the "
                 "face models below; they are not shipped with the program because their licences differ.")
        titles.addWidget(label(intro, "subtle", True))
        head.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        head.addLayout(titles, 1)
        body = QWidget()
        body_lay = QVBoxLayout(body)
        body_lay.setContentsMargins(0, 0, 0, 0)
        if reason:
            why = label(reason, "badge-missing", True)
            why.setObjectName("GuideReason")
            body_lay.addWidget(why)
        self.cards: list[QFrame] = []
        for level, title in (("required", "Needed for search"), ("recommended", "Recommended"),
                             ("optional", "Optional features")):
            items = [m for m in self.missing if m.level == level]
            if not items:
                continue
            body_lay.addWidget(label(title, "heading"))
            for m in items:
                card = self._card(m)
                self.cards.append(card)
                body_lay.addWidget(card)
        if not self.missing:
            body_lay.addWidget(label("All models are installed. You are ready to search.", "badge-ok"))
        body_lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        self.dont_show = QCheckBox("Don't show this at start-up")
        import_button = primary_button("Import models…", "import-scan")
        import_button.clicked.connect(self._import)
        models_button = button("Open Models settings", "model")
        models_button.clicked.connect(self._models)
        close_button = button("Continue without")
        close_button.clicked.connect(self.accept)
        self.demo_button = button("Try with demo data", "info")
        self.demo_button.setObjectName("TryDemo")
        self.demo_button.setToolTip("Installs tiny random-weight DEMO models, a sample gallery and a DEMO case into a "
                                    "separate demo folder and restarts there: scores are meaningless, your real "
                                    "data is not touched.")
        self.demo_button.clicked.connect(self._demo)
        foot = QHBoxLayout()
        foot.addWidget(self.dont_show)
        foot.addStretch(1)
        foot.addWidget(self.demo_button)
        foot.addWidget(models_button)
        foot.addWidget(import_button)
        foot.addWidget(close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(scroll, 1)
        layout.addLayout(foot)
        self.resize(760, 580)

    def _card(self, m: MissingModel) -> QFrame:
        card = QFrame()
        card.setProperty("role", "card")
        card.setObjectName(f"Missing:{m.model_id}")
        lay = QHBoxLayout(card)
        icon = QLabel()
        icon.setPixmap(assets.svg_pixmap("warning" if m.level == "required" else "model", 22))
        text = QVBoxLayout()
        text.setSpacing(2)
        title = label(m.title, "heading-small")
        title.setWordWrap(True)
        text.addWidget(title)
        if m.required_for:
            text.addWidget(label("Needed for: " + ", ".join(m.required_for), "subtle", True))
        if m.hint:
            hint = label(m.hint, "subtle", True)
            hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            text.addWidget(hint)
        lay.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(text, 1)
        return card

    def _models(self) -> None:
        self.open_models.emit()
        self.accept()

    def _demo(self) -> None:
        self.demo_requested.emit()
        self.accept()

    def _import(self) -> None:
        self.import_requested.emit()
        self.accept()


class ExaminerSetupDialog(QDialog):
    """Who is working: display name, agency identifier, and a passphrase where keys live in a key file.

    Signals: the QDialog set (``accepted`` once the profile exists and is the acting one).
    """

    def __init__(self, profiles: ExaminerProfiles, parent: QWidget | None = None, first_run: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("ExaminerSetupDialog")
        self.setWindowTitle("Who is working?" if first_run else "Add examiner")
        self.profiles = profiles
        self.name = QLineEdit()
        self.name.setObjectName("ExaminerName")
        self.name.setPlaceholderText("as reports print it, e.g. A. Examiner")
        self.identifier = QLineEdit()
        self.identifier.setObjectName("ExaminerIdentifier")
        self.identifier.setPlaceholderText("badge or staff number")
        self.passphrase = QLineEdit()
        self.passphrase.setObjectName("ExaminerPassphrase")
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setPlaceholderText("at least 8 characters")
        self.repeat = QLineEdit()
        self.repeat.setObjectName("ExaminerPassphraseRepeat")
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        form = QFormLayout()
        form.addRow("Display name", self.name)
        form.addRow("Agency identifier", self.identifier)
        self.asks_passphrase = profiles.needs_passphrase
        if self.asks_passphrase:
            form.addRow("Key passphrase", self.passphrase)
            form.addRow("Repeat passphrase", self.repeat)
        else:
            self.passphrase.hide()
            self.repeat.hide()
        self.error = label("", "badge-missing", True)
        self.error.setObjectName("ExaminerSetupError")
        intro = ("Every decision, sign-off and report is signed with your own examiner key, so the record says "
                 "who did it. Nothing is recorded until you say who is working.")
        where = ("Your key is kept in a key file protected by this passphrase (no OS keyring here)."
                 if self.asks_passphrase else "Your key is kept in the OS keyring.")
        self.ok_button = primary_button("Start working", "verify")
        self.ok_button.setObjectName("ExaminerSetupOk")
        self.ok_button.clicked.connect(self.create_profile)
        later = button("Later" if first_run else "Cancel")
        later.clicked.connect(self.reject)
        foot = QHBoxLayout()
        foot.addStretch(1)
        foot.addWidget(self.ok_button)
        foot.addWidget(later)
        layout = QVBoxLayout(self)
        layout.addWidget(label("Who is working?", "heading"))
        layout.addWidget(label(intro, "subtle", True))
        layout.addLayout(form)
        layout.addWidget(label(where, "subtle", True))
        layout.addWidget(self.error)
        layout.addLayout(foot)
        self.resize(520, 320)

    def create_profile(self) -> bool:
        """Create the profile from the fields; False (and the reason shown) when refused."""
        name, ident = self.name.text().strip(), self.identifier.text().strip()
        phrase = self.passphrase.text() if self.asks_passphrase else None
        if not name or not ident:
            self.error.setText("Enter your display name and your agency identifier (badge or staff number).")
            return False
        if phrase is not None and phrase != self.repeat.text():
            self.error.setText("The two passphrases differ.")
            return False
        why = self.profiles.add(name, ident, phrase)
        if why:
            self.error.setText(f"Not created: {why}")
            return False
        self.accept()
        return True
