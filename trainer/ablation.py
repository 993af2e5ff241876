"""Ablation: the recipe with one part switched off, scored on the same test split as the full recipe.

Why: at agency sizes some parts of the seed's recipe may not act (semi-hard mining with every class
in the softmax, CORAL at 0.1 % of the loss, an EMA that lags a short run, unfreezing 28 M parameters
for ~900 sketches). Reading the code cannot tell whether a part helps on an agency's data; switching
it off and scoring the same held-out identities can. ``run.ablate = ["coral", "ema"]`` (or
``train --ablate coral --ablate ema``) trains the full recipe in ``run.out_dir``, then one run per part
in ``run.out_dir/ablation/<part>/`` with everything else equal (same data, split, seed and schedule),
and puts their test figures side by side in ``report.json`` and ``export/config.json``
(``metrics.ablation``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import IO, Any

from engine.errors import ConfigError
from engine.sketch.checkpoint import export_train_state
from trainer.config import ABLATION_PARTS, TrainConfig
from trainer.loop import Trainer
from trainer.plan import StepPlan
from trainer.reporting import RunReporter
from trainer.runtime import shutdown
from trainer.state import load_state

# part -> (what is switched off, config values that switch it off)
PARTS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "ema": ("the EMA teacher: decay 0, so the teacher is the student itself (consistency then compares two "
            "views through the same weights); the student is scored and exported",
            {"loss": {"ema_decay_start": 0.0, "ema_decay_end": 0.0, "ema_warmup": False},
             "eval": {"model": "student"}, "run": {"weights": "student"}}),
    "coral": ("the CORAL term (lambda_coral 0)", {"loss": {"lambda_coral": 0.0}}),
    "mining": ("semi-hard negative mining: random negatives only", {"loss": {"semi_hard_fraction": 0.0}}),
    "margin": ("the ArcFace angular margin (m 0: a plain normalised softmax)", {"loss": {"margin_m": 0.0}}),
    "unfreeze": ("unfreezing: the tower stays frozen, only the head trains", {"optim": {"unfreeze_last_blocks": 0}}),
    "flip": ("the horizontal flip", {"data": {"hflip_p": 0.0}}),
    "consistency": ("the EMA consistency term (lambda_consistency 0)", {"loss": {"lambda_consistency": 0.0}}),
    "proto_reg": ("the prototype regression term (lambda_reg 0)", {"loss": {"lambda_reg": 0.0}}),
}
assert tuple(PARTS) == ABLATION_PARTS


def ablated_config(cfg: TrainConfig, part: str) -> TrainConfig:
    """``cfg`` with ``part`` switched off, writing to ``out_dir/ablation/<part>``; everything else equal."""
    if part not in PARTS:
        raise ConfigError(f"Unknown recipe part to ablate: {part}.", hint=f"Parts: {', '.join(PARTS)}.")
    new = copy.deepcopy(cfg)
    for section, values in PARTS[part][1].items():
        for key, value in values.items():
            setattr(getattr(new, section), key, value)
    new.run.ablate = []
    new.run.ablated = part
    new.run.out_dir = str(Path(cfg.run.out_dir) / "ablation" / part)
    if new.run.resume not in ("auto", "never"):
        new.run.resume = "auto"  # a state file given for the full recipe is not this run's
    new.validate()
    return new


def part_note(cfg: TrainConfig, part: str, plan: StepPlan | None) -> str | None:
    """Why switching ``part`` off may change nothing here (already off, or inert at this size), else None."""
    section_values = PARTS[part][1]
    if all(getattr(getattr(cfg, s), k) == v for s, vals in section_values.items() for k, v in vals.items()):
        return "already off in the full recipe: both rows are the same recipe"
    if plan is None:
        return None
    classes = plan.train_classes or plan.train_ids
    if part == "mining" and 0 < classes <= cfg.loss.sampled_softmax_classes:
        return (f"inert at this size: all {classes} training identities are in every step's softmax, so "
                "mining chooses nothing")
    if part == "unfreeze" and not plan.unfreezes():
        return "inert here: the full recipe never unfreezes within its steps"
    return None


def _row(recipe: str, off: str | None, rep: dict[str, Any], note: str | None = None) -> dict[str, Any]:
    keys = ("recall@1", "recall@1_ci95", "recall@10", "recall@10_ci95", "recall@1_full", "tpr@fpr=0.01",
            "tpr@fpr=0.01_ci95", "queries")
    return {"recipe": recipe, "off": off, **{k: rep.get(k) for k in keys}, "weights": rep.get("weights"),
            "step": rep.get("step"), "note": note}


def _fmt(row: dict[str, Any]) -> str:
    lo, hi = row["recall@1_ci95"]
    return f"{row['recipe']} R@1 {row['recall@1']:.3f} [{lo:.3f}, {hi:.3f}]"


def ablation_table(full: dict[str, Any], parts: dict[str, dict[str, Any]],
                   notes: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The test figures of the full recipe and of each ablation, side by side (plus the probe and baseline).

    Args:
        full: the full recipe's test report (:func:`trainer.final.final_test`).
        parts: part -> that ablation run's test report.
        notes: part -> why switching it off may change nothing here.
    """
    notes = notes or {}
    rows = [_row("full recipe", None, full["trained"])]
    rows += [_row(f"without {part}", part, rep["trained"], notes.get(part)) for part, rep in parts.items()]
    for key, name in (("linear_probe", "linear probe"), ("arcface_on_sketch", "ArcFace-on-sketch baseline")):
        if full.get(key):
            rows.append({**_row(name, None, full[key]), "reference": True})
    base = rows[0]
    effects = {}
    for row in rows[1:1 + len(parts)]:
        delta = float(row["recall@1"]) - float(base["recall@1"])
        overlap = not (row["recall@1_ci95"][0] > base["recall@1_ci95"][1]
                       or base["recall@1_ci95"][0] > row["recall@1_ci95"][1])
        effects[row["off"]] = {"recall@1_delta": delta, "within_ci95": overlap}
    lines = [_fmt(base)] + [
        f"{_fmt(r)} ({effects[r['off']]['recall@1_delta']:+.3f}"
        f"{', within the 95 % intervals' if effects[r['off']]['within_ci95'] else ''})"
        + (f" [{r['note']}]" if r["note"] else "") for r in rows[1:1 + len(parts)]]
    lines += [_fmt(r) for r in rows[1 + len(parts):]]
    return {"rows": rows, "effects": effects, "summary": " | ".join(lines), "split": "test"}


class AblationStudy:
    """The full recipe, then one run per part in ``cfg.run.ablate``, then the side-by-side table.

    All runs share the process (and, under torchrun, the process group). Events of each run carry
    ``recipe`` (and ``ablated``); only the study's last event is ``done`` (or ``cancelled``), as the
    desktop app expects of a training process. A stopped study resumes where it stopped: each run
    continues from its own ``last.pt``.
    """

    def __init__(self, cfg: TrainConfig, stream: IO[str] | None = None) -> None:
        cfg.validate()
        if not cfg.run.ablate:
            raise ConfigError("An ablation study needs run.ablate (the recipe parts to switch off).")
        if cfg.data.test_fraction <= 0:
            raise ConfigError("Ablations are compared on the test split, and data.test_fraction is 0.",
                              hint="Set data.test_fraction above 0 (the default is 0.1).")
        self.cfg = cfg
        self.stream = stream
        self.current: Trainer | None = None
        self.stop_requested = False
        self.trainers: dict[str, Trainer] = {}
        self.table: dict[str, Any] | None = None

    def request_stop(self) -> None:
        """Stop the run in progress after its current step (it saves last.pt); no further run starts."""
        self.stop_requested = True
        if self.current is not None:
            self.current.request_stop()

    def _fit(self, trainer: Trainer) -> dict[str, Any]:
        self.current = trainer
        if self.stop_requested:
            trainer.request_stop()
        return trainer.fit()

    def fit(self) -> dict[str, Any]:
        parts = list(self.cfg.run.ablate)
        n = len(parts) + 1
        full = Trainer(self.cfg, self.stream, keep_group=True, tag={"recipe": "full recipe"}, progress_span=(0, n))
        self.trainers["full"] = full
        summary = self._fit(full)
        out = Path(self.cfg.run.out_dir)
        reporter = RunReporter(out, enabled=full.dist.is_main, tensorboard=False, stream=self.stream)
        try:
            if summary.get("cancelled"):
                return self._cancelled(reporter, summary, "full recipe")
            reports: dict[str, dict[str, Any]] = {}
            for k, part in enumerate(parts, 1):
                sub_cfg = ablated_config(self.cfg, part)
                sub_out = Path(sub_cfg.run.out_dir)
                if full.dist.is_main:
                    sub_out.mkdir(parents=True, exist_ok=True)
                    (sub_out / "config.json").write_text(json.dumps(sub_cfg.to_dict(), indent=2, default=str), "utf-8")
                sub = Trainer(sub_cfg, self.stream, keep_group=True,
                              tag={"recipe": f"without {part}", "ablated": part}, progress_span=(k, n))
                self.trainers[part] = sub
                sub_summary = self._fit(sub)
                if sub_summary.get("cancelled"):
                    return self._cancelled(reporter, sub_summary, f"without {part}")
                if sub.test_report is not None:
                    reports[part] = sub.test_report
            if full.dist.is_main and full.test_report is not None:
                plan = full.s.plan if full.s is not None else None
                self.table = ablation_table(full.test_report, reports,
                                            {p: part_note(self.cfg, p, plan) for p in parts})
                self._record(full, summary)
                reporter.emit("ablation", **self.table)
            done = {**summary, "ablation": self.table}
            reporter.emit("done", **done)
            return done
        finally:
            reporter.close()
            shutdown(full.dist)

    def _cancelled(self, reporter: RunReporter, summary: dict[str, Any], recipe: str) -> dict[str, Any]:
        reporter.emit("cancelled", step=summary.get("step"), recipe=recipe,
                      resume_from=str(Path(self.cfg.run.out_dir)),
                      message="Run the same command again to continue the study where it stopped.")
        return {**summary, "cancelled": True, "recipe": recipe}

    def _record(self, full: Trainer, summary: dict[str, Any]) -> None:
        """The table into the full recipe's report.json and its exported config.json (``metrics.ablation``)."""
        out = Path(self.cfg.run.out_dir)
        report_path = out / "report.json"
        doc = json.loads(report_path.read_text("utf-8")) if report_path.is_file() else {}
        doc["ablation"] = self.table
        report_path.write_text(json.dumps(doc, indent=2, default=str), "utf-8")
        src = out / ("best.pt" if (out / "best.pt").is_file() else "last.pt")
        if summary.get("export") and src.is_file():
            metrics = {**(load_state(src).get("metrics") or {}), "test": full.test_report, "ablation": self.table}
            export_train_state(src, out / "export", weights=self.cfg.run.weights, metrics=metrics)
