"""The Train action: ask for a training config, show the dataset doctor's report, then start the run.

The run itself is a subprocess job (:class:`~sketchface_desktop.ops.training.TrainingJob`); this
module only asks the examiner (file dialog, the doctor's report, a yes) and hands the work to ops.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFileDialog, QMessageBox

from sketchface_desktop.ops import training as training_ops
from sketchface_desktop.workers import Job


def start_training(hub: Any, parent: Any, config: str | None = None) -> Job | None:
    """Ask for a training config, check the pretrained weights and the dataset, then start a :class:`TrainingJob`.

    The dataset doctor (``python -m trainer check``) runs first as a background job; its report is
    shown, and training starts only when the examiner confirms (never on an unusable dataset).
    """
    if config is None:
        config, _ = QFileDialog.getOpenFileName(parent, "Training configuration", "", "Training config (*.toml *.json)")
        if not config:
            return None
    cfg, problem = training_ops.read_config(config)
    if cfg is None:
        QMessageBox.warning(parent, "Training configuration", problem)
        return None
    problem = training_ops.pretrained_problem(cfg) or ""
    if problem:
        QMessageBox.warning(parent, "Pretrained weights missing", problem)
        return None
    run_dir = training_ops.default_run_dir()

    def launch() -> Job:
        job = training_ops.TrainingJob(f"Training the sketch encoder ({run_dir.name})",
                                       training_ops.train_command(config, [f'run.out_dir="{run_dir.as_posix()}"']))

        def done(_event: Any) -> None:
            box = QMessageBox(QMessageBox.Icon.Information, "Training finished",
                              f"The run is in {run_dir}. Install it with 'sketchface sketch install {run_dir}' "
                              "(or export it and import it in Settings > Models).", QMessageBox.StandardButton.Ok,
                              parent)
            box.open()

        return hub.start_process(job, on_result=done)

    def show(report: dict[str, Any]) -> None:
        text, ok = training_ops.doctor_summary(report)
        if not ok:
            QMessageBox.warning(parent, "Training dataset", text)
            return
        answer = QMessageBox.question(parent, "Training dataset", text + "\n\nStart training?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            launch()

    return training_ops.check_dataset(cfg).success(show).run(hub)
