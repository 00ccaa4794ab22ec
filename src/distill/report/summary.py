"""summary.json and the result table printed at the end of a run."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distill.train.checkpoint import atomic_write_text

ROLES = ("teacher", "baseline", "student")


def gap_recovered(teacher: float, baseline: float, student: float) -> float | None:
    """(student - baseline) / (teacher - baseline): 1 = the whole teacher-baseline gap closed."""
    gap = teacher - baseline
    return None if abs(gap) < 1e-12 else (student - baseline) / gap


def write_summary(path: Path, summary: dict) -> None:
    atomic_write_text(path, json.dumps(summary, indent=2))


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def summary_table(summary: dict) -> Table:
    table = Table(title=f"{summary.get('name', 'run')}: {summary.get('dataset', '')}, method {summary.get('method')}")
    for column in ("model", "test acc", "params", "size", "latency b1", "latency b256", "agreement"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for role in ROLES:
        entry = summary["models"].get(role)
        if entry is None:
            continue
        table.add_row(
            role,
            _fmt(entry.get("accuracy"), ".2f", 100) + "%",
            f"{entry['params']:,}",
            _fmt(entry.get("size_bytes"), ".1f", 1 / 1024) + " KiB",
            _fmt(entry.get("latency_ms_b1"), ".2f") + " ms",
            _fmt(entry.get("latency_ms_b256"), ".1f") + " ms",
            _fmt(entry.get("agreement"), ".2f", 100) + ("%" if entry.get("agreement") is not None else ""),
        )
    return table


def print_summary(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(summary_table(summary))
    gap = summary.get("gap_recovered")
    if gap is not None:
        console.print(f"gap recovered: [bold]{gap * 100:.1f}%[/bold] of the teacher-baseline accuracy gap "
                      "((student - baseline) / (teacher - baseline))")
