"""PNG plots of a validation: CMC with 95 % bands, per-group hit rates, score distributions (matplotlib, Agg).

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot state, no GUI backend), so
they can be drawn on a worker thread of the desktop app as well as headless.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np

from engine.validate import stats

COLORS = {"trained": "#1f5fa8", "baseline": "#c0392b"}
LABELS = {"trained": "trained sketch encoder", "baseline": "ArcFace baseline"}
_DPI = 130


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def label(name: str) -> str:
    return LABELS.get(name, name)


def _rank_grid(n_max: int) -> np.ndarray:
    return np.unique(np.round(np.geomspace(1, max(n_max, 1), 400)).astype(np.int64))


def cmc_png(doc: dict[str, Any]) -> bytes:
    """CMC curve of each encoder (log rank axis up to the gallery's size) with its 95 % Wilson band."""
    n_max = int(doc["gallery"]["subjects"])
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    grid = np.append(_rank_grid(n_max), int(n_max * 1.06) + 1)  # one step past the end shows the last rise
    for name, enc in doc["encoders"].items():
        ranks = np.asarray([c["rank"] for c in enc["cases"]])
        n = len(ranks)
        hits = np.asarray([np.count_nonzero(ranks <= r) for r in grid])
        bands = np.asarray([stats.wilson(int(h), n) for h in hits])
        color = COLORS.get(name)
        ax.fill_between(grid, bands[:, 0], bands[:, 1], step="post", alpha=0.18, color=color, linewidth=0)
        ax.step(grid, hits / n, where="post", color=color, label=f"{label(name)} (n={n})")
        for r in doc["ranks"]:
            x = enc["hit_rates"][str(r)]
            ax.plot([r], [x["rate"]], "o", color=color, markersize=4)
            ax.annotate(f"{100 * x['rate']:.0f} %", (r, x["rate"]), textcoords="offset points", xytext=(3, -11),
                        fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_xlim(1, grid[-1])
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    if n_max < 30:  # a short axis: label every rank
        ax.set_xticks(range(1, n_max + 1))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("rank (log scale)")
    ax.set_ylabel("share of solved cases with the true person at this rank or better")
    ax.yaxis.label.set_fontsize(8)
    ax.grid(True, which="major", alpha=0.3)
    for r in doc["ranks"]:
        ax.axvline(r, color="#999999", linewidth=0.5, linestyle=":")
    ax.set_title(f"CMC: {doc['cases']['validated']} solved cases against {doc['gallery']['name']} "
                 f"({n_max:,} subjects); shaded: 95 % interval", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def group_rank(doc: dict[str, Any]) -> int:
    """The rank the per-group plot shows: 50 when the gallery reaches it, else the largest reported."""
    return 50 if 50 in doc["ranks"] else int(doc["ranks"][-1])


def groups_png(doc: dict[str, Any]) -> bytes | None:
    """Hit rate at :func:`group_rank` per group value, per encoder, with 95 % intervals and group sizes."""
    keys = list(doc["group_keys"])
    if not keys:
        return None
    r = str(group_rank(doc))
    names = list(doc["encoders"])
    fig = _figure(7.0, 2.3 * len(keys) + 0.6)
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    width = 0.8 / max(1, len(names))
    for ax, key in zip(axes, keys, strict=True):
        values = list(next(iter(doc["encoders"].values()))["groups"][key])
        x = np.arange(len(values))
        for j, name in enumerate(names):
            groups = doc["encoders"][name]["groups"][key]
            rates = [groups[v]["hit_rates"][r] for v in values]
            y = np.asarray([g["rate"] or 0.0 for g in rates])
            err = np.asarray([[y[i] - (g["low"] or 0.0), (g["high"] or 0.0) - y[i]] for i, g in enumerate(rates)]).T
            ax.bar(x + (j - (len(names) - 1) / 2) * width, y, width, yerr=err, capsize=3,
                   color=COLORS.get(name), alpha=0.85, label=label(name), error_kw={"linewidth": 0.8})
        sizes = [next(iter(doc["encoders"].values()))["groups"][key][v]["n"] for v in values]
        ax.set_xticks(x, [f"{v}\n(n={n})" for v, n in zip(values, sizes, strict=True)], fontsize=7.5)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"hit rate at rank {r}", fontsize=8)
        ax.set_title(f"by {key.replace('_', ' ')}", fontsize=9, loc="left")
        ax.grid(True, axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper right", fontsize=7.5, ncols=len(names))
    fig.suptitle("Per group, with 95 % intervals (small groups: wide intervals)", fontsize=9, x=0.02, ha="left")
    return _png(fig)


def scores_png(doc: dict[str, Any]) -> bytes:
    """Score distributions per encoder: true matches, the best wrong candidate per case, other gallery faces."""
    names = list(doc["encoders"])
    fig = _figure(7.0, 2.5 * len(names) + 0.4)
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names, strict=True):
        enc = doc["encoders"][name]
        h = enc["scores"]["other_hist"]
        counts = np.asarray(h["counts"], dtype=np.float64)
        edges = h["start"] + h["width"] * np.arange(len(counts) + 1)
        if counts.sum():
            ax.stairs(counts / counts.sum() / h["width"], edges, color="#7f7f7f", fill=True, alpha=0.35,
                      label="other gallery faces (sample)")
        true = np.asarray([c["score"] for c in enc["cases"]])
        best = np.asarray([c["best_other"] for c in enc["cases"] if c["best_other"] is not None])
        lo = min([float(true.min())] + ([float(best.min())] if len(best) else [])) - 0.05
        hi = max([float(true.max())] + ([float(best.max())] if len(best) else [])) + 0.05
        bins = np.linspace(lo, hi, 41)
        if len(best):
            ax.hist(best, bins=bins, density=True, histtype="step", linewidth=1.4, color="#e67e22",
                    label="best wrong candidate per case")
        ax.hist(true, bins=bins, density=True, histtype="stepfilled", alpha=0.5, color=COLORS.get(name),
                label=f"true match (n={len(true)})")
        ax.set_xlim(max(-1.0, lo - 0.05), min(1.0, hi + 0.05))
        ax.set_xlabel("cosine score", fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.set_title(label(name), fontsize=9, loc="left")
        ax.legend(fontsize=7.5)
    fig.suptitle("Score distributions: true matches vs other candidates", fontsize=9)
    return _png(fig)


def distribution_png(values: dict[str, list[float]], title: str, xlabel: str) -> bytes:
    """Histograms of several named score lists on one axis (identity checks)."""
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    every = [x for xs in values.values() for x in xs]
    lo, hi = (min(every) - 0.05, max(every) + 0.05) if every else (-1.0, 1.0)
    bins = np.linspace(max(-1.0, lo), min(1.0, hi), 41)
    for i, (name, xs) in enumerate(values.items()):
        if xs:
            ax.hist(xs, bins=bins, histtype="stepfilled", alpha=0.45, color=f"C{i}",
                    label=f"{name} (n={len(xs)}, median {np.median(xs):.2f})")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("count", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7.5)
    ax.grid(True, alpha=0.3)
    return _png(fig)


def roc_png(far: np.ndarray, tar: np.ndarray, title: str, marks: dict[str, float | None]) -> bytes:
    """ROC curve (TAR against FAR, log FAR axis) with the TAR at the requested FARs marked."""
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    keep = far > 0
    ax.plot(far[keep], tar[keep], color="#1f5fa8")
    missing = []
    for text, t in marks.items():
        f = float(text.split("=")[1])
        if t is None:
            missing.append(f"{f:g}")
            continue
        ax.plot([f], [t], "o", color="#c0392b", markersize=4)
        ax.annotate(f"TAR {100 * t:.2f} % at FAR {f:g}", (f, t), textcoords="offset points", xytext=(5, -12),
                    fontsize=7)
    if missing:
        ax.text(0.98, 0.03, f"FAR {', '.join(missing)}: too few different-person pairs to measure",
                transform=ax.transAxes, ha="right", fontsize=7, color="#7f7f7f")
    ax.set_xscale("log")
    low_far = float(far[keep].min()) if keep.any() else 1e-5
    ax.set_xlim(min(low_far, 1e-3) * 0.8, 1)
    low_tar = float(tar[keep].min()) if keep.any() else 0.0
    ax.set_ylim(max(0.0, np.floor((low_tar - 0.02) * 20) / 20), 1.005)
    ax.set_xlabel("false accept rate (log scale)", fontsize=8)
    ax.set_ylabel("true accept rate", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    return _png(fig)
