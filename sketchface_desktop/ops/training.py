"""Training operations: the dataset doctor (``python -m trainer check``) before a run starts.

The run itself is a subprocess job (``TrainingJob``, adopted by the hub with ``start_process``); only
the pre-flight check is in-process work, and it runs here so that no widget submits work itself.
"""

from __future__ import annotations

from typing import Any

from sketchface_desktop.ops.base import Op


def check_dataset(cfg: Any) -> Op[dict[str, Any]]:
    """Read the training dataset the config names and report whether a run could use it (io lane)."""
    def work(_progress: Any, _cancel: Any) -> dict[str, Any]:
        from trainer.doctor import check_dataset as doctor

        return dict(doctor(cfg))

    return Op("Checking the training dataset", work, lane="io")
