"""Statistics over seeds and folds: what compare's groups, its curves and cv's summary compute.

One sample per distinct seed (runs repeating a seed are averaged first: they are not independent
draws), sample standard deviations, and Welch's test of whether a gap is within seed noise. Pure
functions of numbers; no scipy (a tabulated t quantile is enough for a 5% test).
"""

from __future__ import annotations

import math
import statistics
from typing import NamedTuple

# Two-sided 95% quantiles of Student's t by degrees of freedom, for Welch's test without scipy.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df: float) -> float:
    """The t quantile for the largest tabulated df not above df (rounding down is conservative)."""
    if df >= 1000:
        return statistics.NormalDist().inv_cdf(0.975)
    return _T975[max(d for d in _T975 if d <= max(df, 1))]



class Stat(NamedTuple):
    mean: float | None
    std: float | None   # sample std over distinct seeds; None with fewer than two
    n: int              # distinct seeds with a value


def sample_of(run):
    """What makes a run an independent sample: its seed (a run without one is its own)."""
    return run.seed if run.seed is not None else id(run)


def seed_stat(pairs) -> Stat:
    """Mean ± sample std of (seed, value) pairs, one sample per distinct seed: runs repeating a
    seed (same config, same seed) are averaged first, as they are not independent draws."""
    by_seed: dict = {}
    for seed, value in pairs:
        if value is not None:
            by_seed.setdefault(seed, []).append(value)
    return stat([math.fsum(v) / len(v) for v in by_seed.values()])  # statistics.fmean, without its checks


def seed_means(parts: list, metric: str) -> list:
    """Per list of summaries (one seed's runs), the mean of metric where any has it."""
    means = []
    for part in parts:
        values = [x for s in part if (x := s[metric]) is not None]
        if values:
            means.append(math.fsum(values) / len(values))
    return means


def stat(means: list) -> Stat:
    """Mean ± sample std of one value per seed."""
    if not means:
        return Stat(None, None, 0)
    return Stat(math.fsum(means) / len(means), _stdev(means) if len(means) > 1 else None, len(means))


def _stdev(xs: list) -> float:
    """The sample standard deviation, in floats over math.fsum: within an ulp or two of
    statistics.stdev, which sums in Fractions and took most of a comparison of 10,000 runs.
    Exactly 0 when the values are equal (an epochs column shows 3, not 3.0)."""
    if min(xs) == max(xs):
        return 0.0
    m = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - m) * (x - m) for x in xs) / (len(xs) - 1))


def within_noise(a: Stat, b: Stat) -> bool | None:
    """Welch's t-test at the 5% level: True when the gap between the means is smaller than
    t * sqrt(s1²/n1 + s2²/n2), i.e. could be seed luck. None when a side has one seed."""
    if a.n < 2 or b.n < 2:
        return None
    v1, v2 = a.std * a.std / a.n, b.std * b.std / b.n
    if v1 + v2 == 0:
        return a.mean == b.mean
    df = (v1 + v2) ** 2 / (v1 * v1 / (a.n - 1) + v2 * v2 / (b.n - 1))  # Welch-Satterthwaite
    return abs(a.mean - b.mean) < t975(df) * math.sqrt(v1 + v2)



def seeds_text(n_runs: int, n_seeds: int) -> str:
    """'3 seeds', or '4 runs, 3 distinct seeds' when some run repeats a seed."""
    plural = "s" if n_seeds != 1 else ""
    return f"{n_seeds} seed{plural}" if n_runs == n_seeds else f"{n_runs} runs, {n_seeds} distinct seed{plural}"


def summary(values: list[float]) -> dict:
    """Mean, sample std (ddof=1; 0 for one value), min, max, n and the values: cv's per-fold figures."""
    if not values:
        return {"n": 0, "values": []}
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values), "values": values}
