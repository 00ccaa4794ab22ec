"""report.html: one self-contained page per run (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from distill.io import atomic_write_text
from distill.report import plots
from distill.report.lm_section import lm_sections
from distill.report.rundata import RunData, load_run, model_rows
from distill.report.search_section import search_section
from distill.report.soft_tree_section import tree_sections
from distill.report.summary import format_macs

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1400px;
 padding:0 16px;color:#222;background:#fff}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.meta{color:#555}.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:12px;overflow:auto;font-size:.85em}
.chart{background:#fff;border:1px solid #eee;max-width:100%;height:auto}body.wide{max-width:none}.chart .frame{fill:none;stroke:#888}
.chart .grid{stroke:#eee}.chart .tick{stroke:#888}.chart text{font-size:11px;fill:#333}
.chart .ti{font-size:13px;font-weight:600}.chart .ax{font-size:12px}.chart .tk{font-size:10px}
.chart .cell{font-size:9px;fill:#222}.chart .cellw{font-size:9px;fill:#fff}.chart .lg{font-size:11px}
.cols{display:grid;gap:16px}.col{min-width:0;overflow:auto}.note{color:#666;font-size:.9em}
"""


def _num(value, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    return "-" if value is None else format(value * scale, spec) + suffix


def page(title: str, body: str, wide: bool = False) -> str:
    """``wide``: the whole window (a comparison page's columns), not the 1400 px of a run's page."""
    css_class = ' class="wide"' if wide else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body{css_class}>{body}</body></html>\n")


def table(headers: list[str], rows: list[list[str]], css_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    ident = f' id="{css_id}"' if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


SUMMARY_HEADERS = ["model", "test accuracy", "params", "MACs", "size", "latency b1", "latency b256", "agreement",
                   "ECE", "gap recovered", "train time", "best epoch"]


def summary_rows(rows: list[dict], prefix: str = "") -> list[list[str]]:
    return [[
        prefix + r["name"], _num(r.get("accuracy"), ".2f", 100, "%"),
        "-" if r.get("params") is None else f"{r['params']:,}", format_macs(r.get("macs")), _num(r.get("size_bytes"), ".1f", 1 / 1024, " KiB"),
        _num(r.get("latency_ms_b1"), ".3f", 1, " ms"), _num(r.get("latency_ms_b256"), ".2f", 1, " ms"),
        _num(r.get("agreement"), ".2f", 100, "%"), _num(r.get("ece"), ".2f", 100, "%"),
        _num(r.get("gap_recovered"), ".1f", 100, "%"), _num(r.get("train_seconds"), ".1f", 1, " s"),
        "-" if r.get("best_epoch") is None else str(r["best_epoch"]),
    ] for r in rows]


def section(title: str, content: str, ident: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>{content}</section>'


def plot_row(svgs: list[str]) -> str:
    return '<div class="plots">' + "".join(svgs) + "</div>"


def model_sections(run: RunData) -> list[str]:
    """The sections that need a finished run's summary (all but the search and the config)."""
    summary = run.summary
    if not summary:
        return []
    if summary.get("task") == "causal_lm":
        return lm_sections(run, table, section, plot_row)
    rows = model_rows(summary)
    names = summary.get("class_names") or []
    # every trained model; the int8 export too when its entry has these details
    trained = [r for r in rows if r["name"] in summary.get("models", {}) or r.get("confusion_matrix")]
    agreement = [(r["name"], r["agreement"]) for r in rows if r.get("agreement") is not None]
    return [
        section("Summary", table(SUMMARY_HEADERS, summary_rows(rows), "summary-table")
                + '<p class="note">Accuracy, ECE and agreement on the test split; gap recovered = (model - baseline)'
                  " / (teacher - baseline); MACs = multiply-adds per sample; latency on CPU, batch 1 and 256.</p>", "summary"),
        section("Learning curves", plot_row(plots.learning_curves(run.metrics)), "curves"),
        section("Accuracy against cost", plot_row([
            plots.tradeoff_chart(rows, "latency_ms_b1", "Accuracy vs latency (batch 1)", "latency (ms)"),
            plots.tradeoff_chart(rows, "size_bytes", "Accuracy vs size", "size (KiB)", 1 / 1024)]), "tradeoff"),
        section("Confusion matrices", plot_row([
            plots.confusion_chart(r.get("confusion_matrix") or [], names, f"{r['name']}") for r in trained]),
            "confusion"),
        section("Calibration", plot_row([
            plots.reliability_chart(r.get("reliability") or [], r.get("ece"), r["name"]) for r in trained])
            + '<p class="note">Bars: accuracy per confidence bin; red marks: the bin\'s mean confidence; '
              "dashed: perfect calibration. ECE = expected calibration error.</p>", "calibration"),
        section("Teacher-student agreement", plot_row([plots.bar_chart(
            agreement, "Agreement with the teacher (test split)", "share of identical predictions", 1.0,
            percent=True)]), "agreement"),
    ]


def run_report(run: RunData) -> str:
    summary = run.summary
    meta = (f"dataset {summary.get('dataset', '?')}, method {summary.get('method', '?')}, "
            f"{summary.get('test_samples', '?')} test samples; folder {run.path}")
    name = run.name
    if run.search is not None:
        best = (run.search.get("best") or {}).get("number")
        name = f"{run.search.get('name', run.path.name)} (search; best trial {best})"
    parts = [f"<h1>distill report: {escape(name)}</h1><p class='meta'>{escape(meta)}</p>"]
    parts += model_sections(run)
    parts += tree_sections(run.path)  # soft decision tree students (report/soft_tree_section.py)
    if run.search is not None:
        parts.append(search_section(run.search))
    parts.append(section("Resolved config", f"<pre>{escape(run.config_text or '(no config.yaml)')}</pre>",
                         "config"))
    return page(f"distill report: {name}", "".join(parts))


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a run (or search) folder; returns its path."""
    run = load_run(folder)
    path = Path(out) if out else run.path / "report.html"
    atomic_write_text(path, run_report(run))
    return path


def report_after_run(run_dir: Path, console=None) -> Path | None:
    """Called by the experiment once summary.json is written; a report failure never fails the run."""
    try:
        path = write_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run's results are already safe on disk
        if console is not None:
            console.print(f"[yellow]warning:[/yellow] report.html not written: {exc}")
        return None
    if console is not None:
        console.print(f"report: {path}")
    return path
