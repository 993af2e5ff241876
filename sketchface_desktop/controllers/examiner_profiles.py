"""ExaminerProfiles: who is working in this window, and the one place that says it changed.

Every case write is signed by the acting examiner's key, so the window must know who that is before
anything is written: the first run asks, the status bar's switcher and Settings > Examiners change
it, and they all follow :attr:`ExaminerProfiles.acting_changed`. The profile files are small and
local (ops/settings), read on the GUI thread; a key file's passphrase is asked by the view and the
key is unlocked at the switch, so case-lane writes never wait on a question.
"""

from __future__ import annotations

import weakref
from typing import Any

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid

from sketchface_desktop.ops import settings as settings_ops


class ExaminerProfiles(QObject):
    """The workstation's examiner profiles and the acting one.

    Signals:
        acting_changed(object): the acting profile (``name``, ``identifier``, ``fingerprint``), or None.
        profiles_changed(object): the list of profiles.
    """

    acting_changed = Signal(object)
    profiles_changed = Signal(object)
    # The acting profile is one per process (the engine's choice), so every instance (the window's, a
    # settings dialog's) broadcasts a change made through any of them.
    _instances: weakref.WeakSet[ExaminerProfiles] = weakref.WeakSet()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        ExaminerProfiles._instances.add(self)
        settings_ops.window_passphrase_policy()
        self.profiles: list[Any] = settings_ops.examiner_profiles()
        self.acting: Any = settings_ops.acting_examiner()

    @property
    def needs_passphrase(self) -> bool:
        """True where key files (not the OS keyring) hold examiner keys."""
        return settings_ops.needs_passphrase()

    def refresh(self) -> None:
        """Read the profiles and the acting one again and broadcast both, from every instance."""
        for inst in list(ExaminerProfiles._instances):
            if isValid(inst):  # a closed dialog's instance may outlive its Qt object
                inst._reread()
            else:
                ExaminerProfiles._instances.discard(inst)

    def _reread(self) -> None:
        self.profiles = settings_ops.examiner_profiles()
        self.acting = settings_ops.acting_examiner()
        self.profiles_changed.emit(self.profiles)
        self.acting_changed.emit(self.acting)

    def find(self, fingerprint: str) -> Any:
        return next((p for p in self.profiles if p.fingerprint == fingerprint), None)

    def key_ready(self, fingerprint: str) -> bool:
        """True when the profile's key signs without asking for a passphrase (keyring, already unlocked)."""
        profile = self.find(fingerprint)
        return profile is not None and settings_ops.key_unlocked(profile)

    def switch(self, fingerprint: str, passphrase: str | None = None) -> str:
        """Act as this profile from now on; '' when switched, else why not (nothing changed then)."""
        profile, why = settings_ops.use_examiner(fingerprint, passphrase)
        if profile is None:
            return why
        self.refresh()
        return ""

    def add(self, name: str, identifier: str, passphrase: str | None = None) -> str:
        """Create a profile with its own key; it becomes the acting one. '' when created, else why not."""
        profile, why = settings_ops.add_examiner(name, identifier, passphrase)
        if profile is None:
            return why
        self.refresh()
        return ""
