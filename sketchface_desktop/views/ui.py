"""Small shared widget helpers, so every window builds actions, headings and hints the same way."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QPushButton, QWidget

from sketchface_desktop.views import assets


def make_action(parent: QWidget, icon: str | None, text: str,
                shortcut: str | QKeySequence.StandardKey | None = None, tip: str = "",
                checkable: bool = False) -> QAction:
    """A QAction with one of our icons, a shortcut, and a tooltip that names the shortcut."""
    action = QAction(assets.icon(icon), text, parent) if icon else QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    seq = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    action.setToolTip(f"{tip or text} ({seq})" if seq else (tip or text))
    action.setStatusTip(tip or text)
    action.setCheckable(checkable)
    return action


def plain(widget: QLabel) -> QLabel:
    """Show text as typed: case, user and database text can never turn into markup or links."""
    widget.setTextFormat(Qt.TextFormat.PlainText)
    return widget


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` literally (Qt would render a tooltip that looks like HTML as HTML)."""
    return "<p style='white-space:pre-wrap'>" + html.escape(text) + "</p>" if text else ""


def label(text: str, role: str = "", wrap: bool = False, parent: QWidget | None = None) -> QLabel:
    """A plain-text QLabel with a style role (heading, subtle, placeholder, baseline, badge-ok, badge-missing)."""
    widget = plain(QLabel(text, parent))
    if role:
        widget.setProperty("role", role)
    widget.setWordWrap(wrap)
    return widget


def primary_button(text: str, icon: str | None = None, parent: QWidget | None = None) -> QPushButton:
    """The one emphasised button of a panel (Search, Add folder…)."""
    button = QPushButton(assets.icon(icon, "#ffffff"), text, parent) if icon else QPushButton(text, parent)
    button.setProperty("primary", True)
    return button


def button(text: str, icon: str | None = None, parent: QWidget | None = None) -> QPushButton:
    return QPushButton(assets.icon(icon), text, parent) if icon else QPushButton(text, parent)
