"""summary.json and the result table printed at the end of a run."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distill.io import atomic_write_text

ROLES = ("teacher", "baseline", "student")


def gap_recovered(teacher: float, baseline: float, student: float) -> float | None:
    """(student - baseline) / (teacher - baseline): 1 = the whole teacher-baseline gap closed."""
    gap = teacher - baseline
    return None if abs(gap) < 1e-12 else (student - baseline) / gap


def write_summary(path: Path, summary: dict) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2))


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def _roles(summary: dict) -> list[str]:
    """teacher, baseline, student first; then any other models (assistant, peers, generations) in run order."""
    models = summary["models"]
    return [r for r in ROLES if r in models] + [r for r in models if r not in ROLES]


def _quality(entry: dict, regression: bool) -> list[str]:
    if regression:
        return [_fmt(entry.get("mse"), ".4g"), _fmt(entry.get("mae"), ".4g"), _fmt(entry.get("r2"), ".4f")]
    return [_fmt(entry.get("accuracy"), ".2f", 100) + "%"]


def summary_table(summary: dict) -> Table:
    regression = summary.get("task") == "regression"
    mode = summary.get("mode", "offline")
    title = f"{summary.get('name', 'run')}: {summary.get('dataset', '')}, method {summary.get('method')}"
    table = Table(title=title + (f", mode {mode}" if mode != "offline" else ""))
    quality = ("test MSE", "test MAE", "test R^2") if regression else ("test acc",)
    last = "teacher MSE" if regression else "agreement"
    for column in ("model", *quality, "params", "size", "latency b1", "latency b256", last):
        table.add_column(column, justify="left" if column == "model" else "right")
    for role in _roles(summary):
        entry = summary["models"][role]
        copy = entry.get("teacher_mse") if regression else entry.get("agreement")
        table.add_row(
            role,
            *_quality(entry, regression),
            f"{entry['params']:,}",
            _fmt(entry.get("size_bytes"), ".1f", 1 / 1024) + " KiB",
            _fmt(entry.get("latency_ms_b1"), ".2f") + " ms",
            _fmt(entry.get("latency_ms_b256"), ".1f") + " ms",
            _fmt(copy, ".4g") if regression else _fmt(copy, ".2f", 100) + ("%" if copy is not None else ""),
        )
    return table


def print_summary(summary: dict, console: Console | None = None) -> None:
    from distill.terminal import fit_table, output_console

    console = console or output_console()
    console.print(fit_table(summary_table(summary), console))
    gap = summary.get("gap_recovered")
    if gap is not None:
        metric = "R^2" if summary.get("gap_metric") == "r2" else "accuracy"
        console.print(f"gap recovered: [bold]{gap * 100:.1f}%[/bold] of the teacher-baseline {metric} gap "
                      "((student - baseline) / (teacher - baseline))", highlight=False)
