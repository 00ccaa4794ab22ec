"""summary.json and the result table printed at the end of a run."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distill.io import atomic_write_text

ROLES = ("teacher", "baseline", "student")


def format_macs(value: int | None) -> str:
    # imported when a table is drawn: evaluate imports torch, which `distill methods` must not load
    from distill.evaluate.cost import format_macs as as_text

    return as_text(value)


def gap_recovered(teacher: float, baseline: float, student: float) -> float | None:
    """(student - baseline) / (teacher - baseline): 1 = the whole teacher-baseline gap closed.

    None when the teacher is not better than the baseline: there is no gap to recover, and the
    ratio of two differences of the same sign would read as a success.
    """
    gap = teacher - baseline
    return None if gap < 1e-12 else (student - baseline) / gap


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


LM_COLUMNS = ("model", "perplexity", "KL to teacher", "top-1 agree", "next-token acc", "ROUGE-L", "gen tok/s",
              "params", "size", "train time")


def lm_table(summary: dict) -> Table:
    """causal_lm: token metrics on the test references and cost, one row per model."""
    title = f"{summary.get('name', 'run')}: {summary.get('dataset', '')}, method {summary.get('method')}"
    mode = summary.get("mode", "offline")
    table = Table(title=title + (f", mode {mode}" if mode != "offline" else ""))
    for column in LM_COLUMNS:
        table.add_column(column, justify="left" if column == "model" else "right")
    for role in _roles(summary):
        e = summary["models"][role]
        agree = e.get("top1_agreement")
        table.add_row(role, _fmt(e.get("perplexity"), ".2f"), _fmt(e.get("kl_to_teacher"), ".3f"),
                      "-" if agree is None else f"{agree * 100:.1f}%", _fmt(e.get("accuracy"), ".1f", 100) + "%",
                      _fmt(e.get("rouge_l"), ".3f"), _fmt(e.get("gen_tokens_per_s"), ".1f"), f"{e['params']:,}",
                      _fmt(e.get("size_bytes"), ".1f", 1 / 2**20) + " MiB", _fmt(e.get("train_seconds"), ".0f") + " s")
    return table


def summary_table(summary: dict) -> Table:
    if summary.get("task") == "causal_lm":
        return lm_table(summary)
    regression = summary.get("task") == "regression"
    mode = summary.get("mode", "offline")
    title = f"{summary.get('name', 'run')}: {summary.get('dataset', '')}, method {summary.get('method')}"
    table = Table(title=title + (f", mode {mode}" if mode != "offline" else ""))
    quality = ("test MSE", "test MAE", "test R^2") if regression else ("test acc",)
    last = "teacher MSE" if regression else "agreement"
    for column in ("model", *quality, "params", "MACs", "size", "latency b1", "latency b256", last):
        table.add_column(column, justify="left" if column == "model" else "right")
    for role in _roles(summary):
        entry = summary["models"][role]
        copy = entry.get("teacher_mse") if regression else entry.get("agreement")
        table.add_row(
            role,
            *_quality(entry, regression),
            f"{entry['params']:,}",
            format_macs(entry.get("macs")),
            _fmt(entry.get("size_bytes"), ".1f", 1 / 1024) + " KiB",
            _fmt(entry.get("latency_ms_b1"), ".2f") + " ms",
            _fmt(entry.get("latency_ms_b256"), ".1f") + " ms",
            _fmt(copy, ".4g") if regression else _fmt(copy, ".2f", 100) + ("%" if copy is not None else ""),
        )
    return table


def size_warnings(summary: dict) -> list[str]:
    """Why the student may not be worth having: not smaller, or not cheaper, than its teacher."""
    models = summary.get("models", {})
    teacher, student = models.get("teacher"), models.get("student")
    if not teacher or not student or summary.get("mode", "offline") == "reverse":
        return []  # reverse KD distils into a larger student on purpose
    out = []
    if student.get("params", 0) >= teacher.get("params", 0):
        out.append(f"warning: the student is not smaller than its teacher ({student['params']:,} parameters "
                   f"against {teacher['params']:,}); distillation is meant to make a smaller model")
    t_macs, s_macs = teacher.get("macs"), student.get("macs")
    if t_macs and s_macs is not None and s_macs >= t_macs:
        out.append(f"warning: the student is not cheaper than its teacher ({format_macs(s_macs)} multiply-adds "
                   f"per sample against {format_macs(t_macs)})")
    return out


def gap_line(summary: dict) -> str | None:
    models = summary.get("models", {})
    if not {"teacher", "baseline", "student"} <= set(models) or summary.get("task") == "causal_lm":
        return None
    metric = "R^2" if summary.get("gap_metric") == "r2" else "accuracy"
    gap = summary.get("gap_recovered")
    if gap is None:
        return "gap recovered: n/a (teacher not better than baseline)"
    return (f"gap recovered: [bold]{gap * 100:.1f}%[/bold] of the teacher-baseline {metric} gap "
            "((student - baseline) / (teacher - baseline))")


def print_summary(summary: dict, console: Console | None = None) -> None:
    from distill.terminal import fit_table, output_console

    console = console or output_console()
    console.print(fit_table(summary_table(summary), console))
    line = gap_line(summary)
    if line:
        console.print(line, highlight=False)
    for warning in size_warnings(summary):
        console.print(f"[yellow]{warning}[/yellow]", highlight=False)
