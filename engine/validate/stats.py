"""Statistics of a validation run: CMC curves, hit rates with 95 % Wilson intervals, per-group breakdowns.

Why Wilson: agencies validate on tens to hundreds of solved cases, and hit rates near 0 or 1 are
common (rank-200 rates of a good encoder). The normal ("Wald") interval collapses to zero width there
and covers far less than 95 %; the Wilson score interval keeps close to its nominal coverage down to
a handful of cases (checked by simulation in the tests) and never leaves [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
REPORT_RANKS = (1, 10, 50, 100, 200)
AGE_BANDS = ((0, 25, "under 25"), (25, 35, "25–34"), (35, 45, "35–44"), (45, 55, "45–54"), (55, 200, "55 and over"))
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``n`` with its share and 95 % Wilson interval (all None when ``n`` is 0)."""

    hits: int
    n: int
    rate: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def percent(self) -> str:
        """``"63.1 % (58.2–67.8)"`` for tables and plots; an em dash without cases."""
        if self.rate is None or self.low is None or self.high is None:
            return "—"
        return f"{100 * self.rate:.1f} % ({100 * self.low:.1f}–{100 * self.high:.1f})"


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (the interval for ``hits`` successes in ``n``)."""
    if n <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= hits <= n:
        raise ValueError(f"hits ({hits}) must lie between 0 and n ({n})")
    p = hits / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Exact ends at 0 and n (floating point would leave 1e-17 residues).
    return (0.0 if hits == 0 else max(0.0, centre - half)), (1.0 if hits == n else min(1.0, centre + half))


def rate(hits: int, n: int) -> Rate:
    """A :class:`Rate` (share and Wilson interval) of ``hits`` in ``n``."""
    if n == 0:
        return Rate(0, 0, None, None, None)
    low, high = wilson(hits, n)
    return Rate(int(hits), int(n), hits / n, low, high)


def hit_rates(ranks: Sequence[int] | np.ndarray, at: Sequence[int] = REPORT_RANKS) -> dict[int, Rate]:
    """Share of cases whose true match is at rank ``r`` or better, for each ``r`` in ``at``."""
    arr = np.asarray(ranks, dtype=np.int64)
    return {int(r): rate(int(np.count_nonzero(arr <= r)), len(arr)) for r in at}


def cmc(ranks: Sequence[int] | np.ndarray, max_rank: int) -> np.ndarray:
    """The CMC curve: element ``r-1`` is the share of cases with the true match at rank ``r`` or better."""
    arr = np.asarray(ranks, dtype=np.int64)
    if max_rank < 1:
        raise ValueError("max_rank must be at least 1")
    if not len(arr):
        return np.zeros(max_rank)
    counts = np.bincount(np.clip(arr, 1, max_rank + 1), minlength=max_rank + 2)[1:max_rank + 1]
    return np.cumsum(counts) / len(arr)


def cmc_steps(ranks: Sequence[int] | np.ndarray) -> dict[str, list[Any]]:
    """The whole CMC curve in compact form: the ranks where it rises and its value there (a step function)."""
    arr = np.sort(np.asarray(ranks, dtype=np.int64))
    if not len(arr):
        return {"rank": [], "rate": []}
    values, counts = np.unique(arr, return_counts=True)
    return {"rank": [int(v) for v in values], "rate": [float(x) for x in np.cumsum(counts) / len(arr)]}


def age_band(birth_year: Any, at_year: int) -> str:
    """The age band of someone born in ``birth_year`` at ``at_year`` (``unknown`` when unreadable)."""
    try:
        age = at_year - int(birth_year)
    except (TypeError, ValueError):
        return UNKNOWN
    if age < 0:
        return UNKNOWN
    return next(label for low, high, label in AGE_BANDS if low <= age < high)


def group_order(key: str) -> list[str]:
    """The natural order of a grouping key's values (age bands youngest first); empty for free keys."""
    return [label for _, _, label in AGE_BANDS] if key == "age_band" else []


def group_value(metadata: Mapping[str, Any], key: str, default_year: int) -> str:
    """The value of grouping ``key`` in a subject's metadata; ``age_band`` is derived from birth year and date."""
    if key == "age_band":
        date = str(metadata.get("date") or "")
        year = int(date[:4]) if date[:4].isdigit() else default_year
        return age_band(metadata.get("birth_year"), year)
    value = metadata.get(key)
    return UNKNOWN if value is None or str(value).strip() == "" else str(value)


def breakdown(ranks: Sequence[int] | np.ndarray, values: Sequence[str], at: Sequence[int] = REPORT_RANKS,
              order: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Hit rates per group value (``values[i]`` is case ``i``'s group): values in ``order`` first, in that
    order, then the others largest first, ``unknown`` last.

    Every case lands in exactly one group (missing values in ``unknown``), so the groups' sizes and
    hits add up to the whole.
    """
    arr = np.asarray(ranks, dtype=np.int64)
    if len(list(values)) != len(arr):
        raise ValueError("one group value per case")
    out: dict[str, dict[str, Any]] = {}
    labels = np.asarray(values, dtype=object)
    rank_of = {v: i for i, v in enumerate(order)}
    values = list(values)
    for value in sorted(set(values), key=lambda v: (v == UNKNOWN, rank_of.get(v, len(rank_of)), -values.count(v), v)):
        sub = arr[labels == value]
        out[value] = {"n": int(len(sub)), "hit_rates": {str(r): x.to_dict() for r, x in hit_rates(sub, at).items()}}
    return out
