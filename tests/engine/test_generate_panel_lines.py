"""The Reconstruct panel shows the structure lines the ControlNet followed, and hides them without structure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.gui


def test_panel_shows_and_hides_the_structure_lines(qtbot: Any) -> None:
    from engine.generate.imaging import lineart_control
    from sketchface_desktop.views.reconstruct_panel import ReconstructPanel

    panel = ReconstructPanel()
    qtbot.addWidget(panel)
    assert not panel.control_preview.isVisibleTo(panel)
    sketch = np.full((64, 64, 3), 235, np.uint8)
    sketch[20:44, 30:33] = 20  # one pencil stroke
    lines = lineart_control(sketch, 64, 64)
    panel.show_control_image(lines)
    assert panel.control_preview.isVisibleTo(panel)
    pix = panel.control_preview.pixmap()
    assert pix is not None and not pix.isNull() and max(pix.width(), pix.height()) == 56
    panel.show_control_image(None)
    assert not panel.control_preview.isVisibleTo(panel)
    assert isinstance(lines, Image.Image)
