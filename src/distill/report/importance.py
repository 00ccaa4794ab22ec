"""Parameter importances from a trials table, without extra dependencies.

For each parameter the finished trials are grouped (by category, or into up to four
equal-count bins of a numeric value); the importance is the share of the objective's variance
explained by the groups (eta squared), then normalised so the importances sum to one.
A rough guide for a few dozen trials, not a substitute for fANOVA on large studies.
"""

from __future__ import annotations

from statistics import fmean


def _groups(values: list, bins: int = 4) -> list:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values) and len(set(values)) > bins:
        order = sorted(range(len(values)), key=lambda i: values[i])
        labels = [0] * len(values)
        for rank, i in enumerate(order):
            labels[i] = rank * bins // len(values)
        return labels
    return [repr(v) for v in values]


def eta_squared(values: list, scores: list[float]) -> float:
    total = sum((s - fmean(scores)) ** 2 for s in scores)
    if total <= 0:
        return 0.0
    mean = fmean(scores)
    groups: dict = {}
    for label, score in zip(_groups(values), scores, strict=True):
        groups.setdefault(label, []).append(score)
    between = sum(len(g) * (fmean(g) - mean) ** 2 for g in groups.values())
    return between / total


def param_importances(trials: list[dict]) -> dict[str, float]:
    """``{param: importance}`` over completed trials, largest first; empty with fewer than three."""
    done = [t for t in trials if t.get("state") == "COMPLETE" and t.get("value") is not None]
    names = sorted({k for t in done for k in t.get("params", {})})
    if len(done) < 3 or not names:
        return {}
    raw = {}
    for name in names:
        rows = [t for t in done if name in t["params"]]
        raw[name] = eta_squared([t["params"][name] for t in rows], [t["value"] for t in rows]) if len(rows) > 1 else 0
    total = sum(raw.values())
    scaled = {k: (v / total if total > 0 else 0.0) for k, v in raw.items()}
    return dict(sorted(scaled.items(), key=lambda kv: -kv[1]))
