"""A comparison page: several runs side by side (table, overlaid curves, config differences, per-run plots)."""

from __future__ import annotations

from html import escape
from pathlib import Path

import yaml

from distill.io import atomic_write_text
from distill.report import plots
from distill.report.html import SUMMARY_HEADERS, page, plot_row, section, summary_rows, table
from distill.report.rundata import RunData, load_run, model_rows


def _flat(data, prefix: str = "") -> dict:
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def config_differences(runs: list[RunData], labels: list[str]) -> str:
    """Config fields that differ, and the settings no config holds (world size under torchrun, device,
    threads, versions: the summary's ``environment``)."""
    flats = []
    for r in runs:
        flat = _flat(yaml.safe_load(r.config_text) or {}) if r.config_text else {}
        flat.update(_flat(r.summary.get("environment") or {}, "environment."))
        flats.append(flat)
    keys = sorted({k for f in flats for k in f})
    rows = [[key, *(str(f.get(key, "-")) for f in flats)] for key in keys
            if len({repr(f.get(key)) for f in flats}) > 1]
    if not rows:
        return "<p>The runs' configs are identical.</p>"
    return table(["config field or setting", *labels], rows, "config-diff")


def run_column(run: RunData, label: str) -> str:
    rows = model_rows(run.summary)
    student = next((r for r in rows if r["name"] == "student"), None)
    svgs = plots.learning_curves(run.metrics)
    if student is not None:
        svgs.append(plots.confusion_chart(student.get("confusion_matrix") or [], run.summary.get("class_names") or [],
                                          f"student: {label}"))
        svgs.append(plots.reliability_chart(student.get("reliability") or [], student.get("ece"), f"student: {label}"))
    return f'<div class="col"><h3>{escape(label)}</h3>{"".join(svgs)}</div>'


def comparison_page(runs: list[RunData]) -> str:
    labels = [r.path.name or str(r.path) for r in runs]
    rows, points, curves = [], [], {}
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        models = model_rows(run.summary)
        rows += summary_rows(models, prefix=f"{label} / ")
        color = plots.PALETTE[i % len(plots.PALETTE)]
        points += [{**m, "name": f"{label}/{m['name']}", "color": color} for m in models if m["name"] != "teacher"]
        curves[label] = plots.epoch_series(run.metrics, "val_accuracy").get("student", [])
    colors = {label: plots.PALETTE[i % len(plots.PALETTE)] for i, label in enumerate(labels)}
    overlay = [plots.curve_chart(curves, "Student validation accuracy", "val accuracy", colors),
               plots.tradeoff_chart(points, "latency_ms_b1", "Accuracy vs latency (batch 1)", "latency (ms)"),
               plots.tradeoff_chart(points, "size_bytes", "Accuracy vs size", "size (KiB)", 1 / 1024)]
    columns = "".join(run_column(run, label) for run, label in zip(runs, labels, strict=True))
    body = [
        f"<h1>distill comparison: {len(runs)} runs</h1>",
        "<p class='meta'>" + escape(", ".join(str(r.path) for r in runs)) + "</p>",
        section("Summary", table(["run / model", *SUMMARY_HEADERS[1:]], rows, "summary-table"), "summary"),
        section("Overlaid", plot_row(overlay), "overlay"),
        section("Config differences", config_differences(runs, labels), "config-diff-section"),
        section("Side by side", f'<div class="cols" style="grid-template-columns:repeat({len(runs)},minmax(0,1fr))">'
                                f"{columns}</div>", "side-by-side"),
    ]
    return page(f"distill comparison: {', '.join(labels)}", "".join(body), wide=True)


def write_comparison(folders: list[str | Path], out: str | Path) -> Path:
    runs = [load_run(f) for f in folders]
    path = Path(out)
    atomic_write_text(path, comparison_page(runs))
    return path
