"""The training loop: student + EMA teacher, sampled ArcFace softmax and regularisers, eval, checkpoints.

Set-up (data, prototypes, model) lives in :mod:`trainer.setup`; this module runs optimiser steps,
evaluation, saving and exact resume.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from engine.sketch.checkpoint import export_train_state
from trainer import optim as optim_mod
from trainer.config import TrainConfig
from trainer.data import sample_seed
from trainer.evaluate import retrieval_report
from trainer.final import export_probe, final_test
from trainer.losses import consistency_loss, coral_loss, prototype_regression, sampled_arcface_loss
from trainer.reporting import RunReporter
from trainer.runtime import autocast, barrier, init_distributed, shutdown
from trainer.schedules import consistency_weight, ema_decay, scale_and_margin
from trainer.setup import Setup, build_setup
from trainer.state import load_state, save_state, set_rng_state

METRIC = "recall@1_val"


class Trainer:
    """One training run. ``fit()`` trains (resuming when configured) and returns a summary.

    Args:
        cfg: the run's configuration.
        stream: where JSON-lines events go (stdout by default).
        keep_group: leave the distributed process group up at the end (a study runs several
            trainers in one process; the last one, or the study, shuts it down).
        tag, progress_span: see :class:`trainer.reporting.RunReporter` (runs inside an ablation study).
    """

    def __init__(self, cfg: TrainConfig, stream: IO[str] | None = None, *, keep_group: bool = False,
                 tag: dict[str, Any] | None = None, progress_span: tuple[int, int] | None = None) -> None:
        cfg.validate()
        self.cfg = cfg
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        self.dist = init_distributed(cfg.run.device, cfg.run.dist_timeout_min)
        self.out = Path(cfg.run.out_dir)
        self.keep_group = keep_group
        self.reporter = RunReporter(self.out, enabled=self.dist.is_main, tensorboard=cfg.run.tensorboard,
                                    stream=stream, tag=tag, progress_span=progress_span)
        self.s: Setup | None = None
        self.step = 0
        self.epoch = 0
        self.micro_done = 0
        self.best_metric = float("-inf")
        self.best_step = -1
        self.best_weights = "ema"
        self.unfreeze_step: int | None = None
        self.metrics: dict[str, Any] = {}
        self.ddp: Any = None
        self.stop_requested = False
        self._saved_step = -1
        self.test_report: dict[str, Any] | None = None
        self.test_evaluations = 0  # the test split is scored once, at the end, for the chosen checkpoint

    def request_stop(self) -> None:
        """Ask the run to stop after the current step, saving last.pt (safe from a signal handler)."""
        self.stop_requested = True

    def _should_stop(self) -> bool:
        """The stop request, agreed by all ranks (a signal may reach them a step apart)."""
        if not self.dist.distributed:
            return self.stop_requested
        flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.dist.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item() > 0)

    # -- set-up and resume -------------------------------------------------------------------
    def setup(self) -> Setup:
        if self.s is None:
            self.s = build_setup(self.cfg, self.dist, self.reporter)
            self._wrap()
            self._maybe_resume()
        return self.s

    def _wrap(self) -> None:
        """(Re-)wrap the student in DDP: needed again after unfreezing (DDP fixes its params at wrap time)."""
        if not self.dist.distributed:
            return
        from torch.nn.parallel import DistributedDataParallel

        assert self.s is not None
        ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(self.s.model, device_ids=ids)

    def _resume_path(self) -> Path | None:
        r = self.cfg.run.resume
        if r == "never":
            return None
        if r == "auto":
            last = self.out / "last.pt"
            return last if last.is_file() else None
        return Path(r)

    def _resume_conflicts(self, st: dict[str, Any]) -> list[str]:
        """Why ``st`` cannot be continued exactly with this run's config and data (empty: it can)."""
        assert self.s is not None
        old = st.get("config") or {}
        o_old, o_new = old.get("optim", {}), self.cfg.optim
        reasons = []
        if int(st.get("world_size", 1)) != self.dist.world:
            reasons.append(f"the world size changed ({st.get('world_size')} -> {self.dist.world} processes)")
        for key in ("batch_size", "accum_steps"):
            if key in o_old and o_old[key] != getattr(o_new, key):
                reasons.append(f"optim.{key} changed ({o_old[key]} -> {getattr(o_new, key)})")
        if st.get("class_ids") != self.s.train_ids or st.get("val_ids") != self.s.val_ids \
                or st.get("test_ids", self.s.test_ids) != self.s.test_ids:
            reasons.append("it was trained on other identities than the current dataset split")
        elif st.get("dataset_sha256") and st["dataset_sha256"] != self.s.dataset_digest:
            reasons.append("the dataset's photos (their ArcFace prototypes) changed")
        return reasons

    def _resumable_state(self) -> tuple[Path, dict[str, Any]] | None:
        """The state to continue from, decided by rank 0 and sent to every rank.

        Why: only rank 0 saves ``last.pt``. Without a shared file system the other machines have no
        state file, and a rank that started afresh while rank 0 resumed would run other steps than
        rank 0 and stall the collectives. So rank 0 reads its state and broadcasts it.
        """
        if not self.dist.distributed:
            path = self._resume_path()
            return None if path is None else (path, load_state(path))
        box: list[Any] = [None]
        if self.dist.is_main:
            path = self._resume_path()
            box = [None if path is None else (str(path), load_state(path))]
        torch.distributed.broadcast_object_list(box, src=0)
        if box[0] is None:
            return None
        return Path(box[0][0]), box[0][1]

    def _maybe_resume(self) -> None:
        found = self._resumable_state()
        if found is None:
            return
        assert self.s is not None
        path, st = found
        reasons = self._resume_conflicts(st)
        if reasons and not self.cfg.run.force_resume:
            from engine.errors import ConfigError

            raise ConfigError(f"{path} cannot be resumed exactly: {'; '.join(reasons)}.",
                              hint="Resume with the same dataset, split, batch and number of processes; or pass "
                                   "--force (run.force_resume=true) to continue anyway (logged), or set "
                                   "run.resume='never' to start afresh.")
        if reasons:
            self.reporter.emit("warning", message=f"Resuming {path} although {'; '.join(reasons)} (--force): the run "
                                                  "is no longer exactly reproducible.", resume_forced=reasons)
        self.s.model.load_state_dict(st["model"])
        self.s.ema.load_state_dict(st["ema"])
        if st.get("unfrozen"):
            self._unfreeze(int(st["unfreeze_step"]), announce=False)
        self.s.optimizer.load_state_dict(st["optimizer"])
        self.s.scheduler.load_state_dict(st["scheduler"])
        self.s.scaler.load_state_dict(st["scaler"])
        self.step, self.epoch, self.micro_done = int(st["step"]), int(st["epoch"]), int(st["micro_done"])
        self.micro_done = min(self.micro_done, self.s.sampler.full_batches())
        self.best_metric, self.best_step = float(st["best_metric"]), int(st["best_step"])
        self.best_weights = str(st.get("best_weights", "ema"))
        self.metrics = dict(st.get("metrics") or {})
        set_rng_state(st["rng"])
        old_total = int(st.get("total_steps", st["scheduler"].get("total", 0)))
        self.reporter.emit("resume", path=str(path), step=self.step, epoch=self.epoch, micro_done=self.micro_done,
                           total_steps=self.s.plan.total_steps, previous_total_steps=old_total)

    def _unfreeze(self, step: int, announce: bool = True) -> None:
        assert self.s is not None
        added = optim_mod.unfreeze(self.s.model, self.s.optimizer, self.s.scheduler, self.cfg.optim, step,
                                   warmup=self.s.plan.backbone_warmup)
        self.unfreeze_step = step
        self._wrap()
        if announce:
            self.reporter.emit("unfreeze", step=step, blocks=self.cfg.optim.unfreeze_last_blocks,
                               params=int(sum(p.numel() for p in added)))

    # -- one optimiser step ------------------------------------------------------------------
    def _optimizer_step(self, micro: list[tuple[torch.Tensor, ...]]) -> dict[str, float]:
        s = self.setup()
        c, lc, dev, plan = self.cfg, self.cfg.loss, self.dist.device, s.plan
        scale, margin = scale_and_margin(self.step, lc, plan.margin_ramp)
        lam_cons = consistency_weight(self.step, self.unfreeze_step, lc, plan.consistency_decay)
        net = self.ddp if self.ddp is not None else s.model
        sums: dict[str, float] = defaultdict(float)
        for j, (weak, strong, labels) in enumerate(micro):
            weak, strong, labels = weak.to(dev), strong.to(dev), labels.to(dev)
            last = j == len(micro) - 1
            sync = contextlib.nullcontext() if (self.ddp is None or last) else self.ddp.no_sync()
            gen = torch.Generator().manual_seed(sample_seed(c.run.seed + 7919, self.step, j * self.dist.world
                                                            + self.dist.rank))
            with sync:
                with autocast(dev, s.amp):
                    if lc.arcface_both_views:  # one forward of both views (DDP allows one per backward)
                        z, z_w = net(torch.cat([strong, weak])).chunk(2)
                    else:
                        z, z_w = net(strong), None
                    with torch.no_grad():
                        z_t = s.ema.model(weak)
                arc, n_hard = sampled_arcface_loss(z, labels, s.protos, k=lc.sampled_softmax_classes, scale=scale,
                                                   margin=margin, semi_hard_fraction=lc.semi_hard_fraction, gen=gen)
                if z_w is not None:  # the reference averages the loss of the weak and the strong view
                    arc_w, _ = sampled_arcface_loss(z_w, labels, s.protos, k=lc.sampled_softmax_classes, scale=scale,
                                                    margin=margin, semi_hard_fraction=lc.semi_hard_fraction,
                                                    gen=gen)
                    arc = 0.5 * (arc + arc_w)
                cons = consistency_loss(z, z_t)
                reg = prototype_regression(z, s.protos[labels])
                pick = torch.randperm(s.protos.shape[0], generator=gen)[:lc.coral_sample].to(dev)
                coral = coral_loss(z, s.protos[pick])
                total = arc + lam_cons * cons + lc.lambda_reg * reg + lc.lambda_coral * coral
                s.scaler.scale(total / len(micro)).backward()
            for key, val in (("loss", total), ("arcface", arc), ("consistency", cons), ("proto_reg", reg),
                             ("coral", coral)):
                sums[key] += float(val.detach()) / len(micro)
            sums["semi_hard"] += n_hard / len(micro)
        s.scaler.unscale_(s.optimizer)
        params = [p for g in s.optimizer.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, c.optim.grad_clip_norm) if c.optim.grad_clip_norm > 0 \
            else torch.tensor(0.0)
        s.scaler.step(s.optimizer)
        s.scaler.update()
        s.optimizer.zero_grad(set_to_none=True)
        decay = ema_decay(self.step, plan.ema_ramp, lc, plan.warmup)
        s.ema.update(s.model, decay)
        sums.update(grad_norm=float(grad_norm), s=scale, m=margin, ema_decay=decay, lambda_consistency=lam_cons)
        return dict(sums)

    # -- evaluation and checkpoints ----------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, weights: str = "ema") -> dict[str, Any]:
        """Metrics of the EMA teacher ("ema") or the student on the validation sketches."""
        s = self.setup()
        model = s.ema.model if weights == "ema" else s.model
        was_training = model.training
        model.eval()
        outs = []
        for start in range(0, s.val_inputs.shape[0], self.cfg.eval.batch_size):
            batch = s.val_inputs[start:start + self.cfg.eval.batch_size].to(self.dist.device)
            with autocast(self.dist.device, s.amp):
                outs.append(model(batch).float().cpu())
        model.train(was_training)
        emb = torch.cat(outs).numpy()
        return retrieval_report(emb, s.val_ids, s.all_ids, s.all_protos, self.cfg.eval.cmc_max_rank,
                                self.cfg.eval.val_negatives_per_query, seed=self.cfg.run.seed)

    def evaluate_all(self) -> dict[str, Any]:
        """Score the configured weights; with "both", the better of student and EMA, the other's summary beside it.

        Why both: early in a short run the EMA lags the student; late, it is usually smoother. The
        weights that score higher are the ones worth exporting, and which they were is recorded.
        """
        which = ("ema", "student") if self.cfg.eval.model == "both" else (self.cfg.eval.model,)
        reports = {w: self.evaluate(w) for w in which}
        chosen = max(which, key=lambda w: float(reports[w][METRIC]))  # a tie keeps the EMA (listed first)
        out = {**reports[chosen], "weights": chosen}
        for w, rep in reports.items():
            out[w] = {k: rep[k] for k in (METRIC, "recall@1_full", "recall@10_full", "cos_true_minus_impostor")
                      if k in rep}
        return out

    def _payload(self) -> dict[str, Any]:
        s = self.setup()
        enc = s.encoder_config
        enc.metrics = {k: v for k, v in self.metrics.items() if k != "cmc_full"}
        return {"encoder_config": enc.to_dict(), "model": s.model.state_dict(), "ema": s.ema.state_dict(),
                "optimizer": s.optimizer.state_dict(), "scheduler": s.scheduler.state_dict(),
                "scaler": s.scaler.state_dict(), "step": self.step, "epoch": self.epoch,
                "micro_done": self.micro_done, "best_metric": self.best_metric, "best_step": self.best_step,
                "best_weights": self.best_weights,
                "unfrozen": self.unfreeze_step is not None, "unfreeze_step": self.unfreeze_step or 0,
                "class_ids": s.train_ids, "val_ids": s.val_ids, "test_ids": s.test_ids, "metrics": self.metrics,
                "config": self.cfg.to_dict(), "world_size": self.dist.world, "dataset_sha256": s.dataset_digest,
                "total_steps": s.plan.total_steps}

    def save(self, kind: str) -> Path | None:
        if not self.dist.is_main:
            return None
        path = save_state(self.out / f"{kind}.pt", self._payload())
        if kind == "last":
            self._saved_step = self.step
        self.reporter.emit("checkpoint", kind=kind, path=str(path), step=self.step)
        return path

    def _eval_and_save(self) -> None:
        if self.dist.is_main:
            self.metrics = self.evaluate_all()
            self.reporter.emit("eval", step=self.step, epoch=self.epoch, **self.metrics)
            self.reporter.scalars(self.step, {k: v for k, v in self.metrics.items() if isinstance(v, float)}, "val")
            if self.cfg.run.save_best and float(self.metrics[METRIC]) > self.best_metric:
                self.best_metric, self.best_step = float(self.metrics[METRIC]), self.step
                self.best_weights = str(self.metrics.get("weights", self.cfg.eval.model))
                self.save("best")
        barrier(self.dist)

    # -- the loop ----------------------------------------------------------------------------
    def _loader(self) -> DataLoader[Any]:
        s = self.setup()
        s.dataset.set_epoch(self.epoch)
        s.sampler.set_epoch(self.epoch, skip_batches=self.micro_done)
        return DataLoader(s.dataset, batch_size=self.cfg.optim.batch_size, sampler=s.sampler, drop_last=True,
                          num_workers=self.cfg.data.num_workers, pin_memory=self.dist.device.type == "cuda")

    def _log(self, stats: dict[str, float], seen: int, t0: float) -> None:
        s = self.setup()
        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(s.optimizer.param_groups)}
        rate = seen * self.dist.world / max(time.perf_counter() - t0, 1e-9)
        self.reporter.emit("step", step=self.step, epoch=self.epoch, progress=self.step / s.total_steps,
                           images_per_s=rate, lr_head=lrs.get("head", 0.0), lr_backbone=lrs.get("backbone", 0.0),
                           **stats)
        self.reporter.scalars(self.step, {**stats, "lr_head": lrs.get("head", 0.0),
                                          "lr_backbone": lrs.get("backbone", 0.0), "images_per_s": rate}, "train")

    def _warn_negligible_terms(self, stats: dict[str, float]) -> None:
        """Say which weighted loss terms are under 1 % of the loss on the first batch (they barely act early on)."""
        small = negligible_terms(stats, self.cfg)
        if small:
            self.reporter.emit("warning", message="At the first step these weighted loss terms are under 1 % of the loss: "
                               + ", ".join(f"{k} {v:.2%}" for k, v in small.items()) + ".",
                               negligible_terms={k: round(v, 6) for k, v in small.items()})

    def first_batch(self) -> dict[str, float]:
        """The loss terms of one optimiser step on the first batch (``show-config --first-batch``; not saved)."""
        s = self.setup()
        loader = iter(self._loader())
        micro = [next(loader) for _ in range(self.cfg.optim.accum_steps)]
        s.scheduler.apply(self.step)
        return self._optimizer_step(micro)

    def fit(self) -> dict[str, Any]:
        """Train to the end (or ``run.max_steps``); returns best/last metrics and the export path."""
        s = self.setup()
        c = self.cfg
        if c.eval.eval_at_start and self.step == 0:
            self._eval_and_save()
        stop = cancelled = False
        t0, seen = time.perf_counter(), 0
        while self.epoch < c.optim.epochs and not stop:
            buf: list[tuple[torch.Tensor, ...]] = []
            for batch in self._loader():
                buf.append(batch)
                self.micro_done += 1
                if len(buf) < c.optim.accum_steps:
                    continue
                due = s.plan.unfreeze_step
                if self.unfreeze_step is None and due is not None and self.step >= due:
                    self._unfreeze(self.step)
                s.scheduler.apply(self.step)
                stats = self._optimizer_step(buf)
                seen += sum(b[0].shape[0] for b in buf)
                buf = []
                self.step += 1
                if self.step % c.run.log_every == 0 or self.step == 1:
                    self._log(stats, seen, t0)
                if self.step == 1:
                    self._warn_negligible_terms(stats)
                if c.run.save_every_steps and self.step % c.run.save_every_steps == 0:
                    self.save("last")
                if c.run.max_steps and self.step >= c.run.max_steps:
                    stop = True
                elif self._should_stop():
                    stop = cancelled = True
                if stop:
                    break
            if stop and (cancelled or self.micro_done < s.sampler.full_batches()):
                break
            self.epoch += 1
            self.micro_done = 0
            if self.epoch % c.eval.eval_every_epochs == 0 or self.epoch == c.optim.epochs:
                self._eval_and_save()
            self.save("last")
            self.reporter.emit("epoch", epoch=self.epoch, step=self.step)
        if stop and self._saved_step != self.step:
            self.save("last")
        if cancelled:
            self.reporter.emit("cancelled", step=self.step, resume_from=str(self.out / "last.pt"))
            self.reporter.close()
            if not self.keep_group:
                shutdown(self.dist)
            return {"step": self.step, "epoch": self.epoch, "cancelled": True}
        return self._finish()

    def final_test(self, src: Path) -> dict[str, Any] | None:
        """Score the chosen checkpoint ``src`` on the test split, once, beside the probe and the baseline.

        Writes ``report.json`` and, when a probe was fitted, exports it to ``probe/`` so an agency
        can install whichever wins. Returns None when the run has no test split.
        """
        s = self.setup()
        if not s.test_ids or s.test_inputs is None or self.test_evaluations:
            return self.test_report
        st = load_state(src)
        report, probe = final_test(self.cfg, state=st, test_ids=s.test_ids, test_inputs=s.test_inputs,
                                   all_ids=s.all_ids, all_protos=s.all_protos, pairs=s.pairs,
                                   probe_features=s.probe_features, train_ids=s.train_ids, val_ids=s.val_ids,
                                   device=self.dist.device, amp=s.amp)
        self.test_evaluations += 1
        report["checkpoint"] = src.name
        # What the figures were trained on: real pairs, and synthetic ones (marked, never in val or test).
        report["training_data"] = {"real_train_pairs": len(s.train_ids), "synthetic_pairs": len(s.synthetic_ids),
                                   "synthetic": s.synthetic or None}
        if probe is not None and s.pretrained is not None:
            probe_dir = export_probe(probe, s.encoder_config, s.pretrained, self.out / "probe",
                                     {"test": report["linear_probe"]})
            report["probe_export"] = str(probe_dir)
        self.test_report = report
        doc = {"test": report, "synthetic_pairs": [{"id": i, "synthetic": True} for i in s.synthetic_ids]}
        (self.out / "report.json").write_text(json.dumps(doc, indent=2, default=str), "utf-8")
        self.reporter.emit("test", **report)
        return report

    def _finish(self) -> dict[str, Any]:
        export = None
        if self.dist.is_main:
            src = self.out / ("best.pt" if (self.out / "best.pt").is_file() else "last.pt")
            if src.is_file():
                test = self.final_test(src)
                metrics = None if test is None else {**(load_state(src).get("metrics") or {}), "test": test}
                export = export_train_state(src, self.out / "export", weights=self.cfg.run.weights, metrics=metrics)
                self.reporter.emit("export", path=str(export), source=src.name,
                                   weights=self.best_weights if self.cfg.run.weights == "best" else self.cfg.run.weights)
        summary = {"step": self.step, "epoch": self.epoch, "best_metric": self.best_metric,
                   "best_step": self.best_step, "metrics": self.metrics, "export": str(export) if export else None,
                   "test": self.test_report}
        self.reporter.emit("done", **summary)
        self.reporter.close()
        barrier(self.dist)
        if not self.keep_group:
            shutdown(self.dist)
        return summary


def negligible_terms(stats: dict[str, float], cfg: TrainConfig) -> dict[str, float]:
    """Weighted loss terms under 1 % of the total loss in ``stats`` (one step's), as shares of it.

    A term switched off (weight 0) is not listed: it is off, not negligible.
    """
    lc = cfg.loss
    total = abs(stats.get("loss", 0.0))
    if total <= 0:
        return {}
    weights = {"consistency": stats.get("lambda_consistency", lc.lambda_consistency), "coral": lc.lambda_coral,
               "proto_reg": lc.lambda_reg}
    shares = {k: w * stats.get(k, 0.0) / total for k, w in weights.items() if w != 0}
    return {k: v for k, v in shares.items() if abs(v) < 0.01}


def losses_of(history: list[dict[str, Any]]) -> np.ndarray:
    """Per-step total losses from a run's event history (for comparing runs)."""
    return np.array([e["loss"] for e in history if e.get("event") == "step"], dtype=np.float64)
