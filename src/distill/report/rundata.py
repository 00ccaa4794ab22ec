"""Reading a run folder (summary.json, metrics.jsonl, config.yaml) and a search folder (search.json, trials.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from distill.errors import ConfigError
from distill.report.summary import ROLES, gap_recovered
from distill.rundir import read_records


@dataclass
class RunData:
    path: Path
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    config_text: str = ""
    search: dict | None = None  # search.json plus "trials" from trials.json

    @property
    def name(self) -> str:
        return self.summary.get("name") or self.path.name


def read_json(path: Path, kind: type = dict):
    """A JSON file that must hold an object (or ``kind``); a torn or wrong file is a one-line error."""
    try:
        value = json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"report: {path} is not valid JSON (line {exc.lineno}: {exc.msg}); it may have been cut "
                          f"short by a killed run: run it again (--resume) to rewrite it") from None
    if not isinstance(value, kind):
        raise ConfigError(f"report: {path} holds a JSON {type(value).__name__}, not the "
                          f"{'object' if kind is dict else 'list'} distill writes; was it edited?")
    return value


def read_search(folder: Path) -> dict | None:
    meta_path, trials_path = folder / "search.json", folder / "trials.json"
    if not trials_path.is_file():
        return None
    meta = read_json(meta_path) if meta_path.is_file() else {}
    return {**meta, "trials": read_json(trials_path, list)}


def load_run(folder: str | Path) -> RunData:
    """A run folder, or a search folder (whose best trial's run supplies the model results)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"report: no such folder: {folder}")
    search = read_search(folder)
    run_dir = folder
    if not (folder / "summary.json").is_file() and search and search.get("best_run_dir"):
        run_dir = folder / search["best_run_dir"]
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file() and search is None:
        raise ConfigError(f"report: {folder} has no summary.json (is the run finished?) and no search results")
    summary = read_json(summary_path) if summary_path.is_file() else {}
    config_path = run_dir / "config.yaml"
    return RunData(folder, summary, read_records(run_dir / "metrics.jsonl"),
                   config_path.read_text() if config_path.is_file() else "", search)


def _quantized(summary: dict) -> dict | None:
    """The int8 model's numbers from an "export" entry, in whichever nesting the exporter used."""
    export = summary.get("export")
    if not isinstance(export, dict):
        return None
    for key, value in export.items():
        if isinstance(value, dict) and ("int8" in key or "quant" in key) and "accuracy" in value:
            return value
    return export if "accuracy" in export else None


def model_rows(summary: dict) -> list[dict]:
    """One row per model (teacher, baseline, student, and the int8 export when there is one)."""
    models = summary.get("models", {})
    rows = [{"name": role, **models[role]} for role in ROLES if role in models]
    export = summary.get("export") if isinstance(summary.get("export"), dict) else {}
    if isinstance(export.get("fp32"), dict) and "accuracy" in export["fp32"]:
        rows.append({"name": "student onnx", **export["fp32"]})  # the fp32 ONNX model in onnxruntime
    quant = _quantized(summary)
    if quant is not None:
        row = {"name": "student int8", **quant}
        row.setdefault("size_bytes", quant.get("size"))
        row.setdefault("latency_ms_b1", quant.get("latency_ms"))
        rows.append(row)
    teacher, baseline = models.get("teacher"), models.get("baseline")
    for row in rows:
        if row["name"] not in ("teacher", "baseline") and teacher and baseline and row.get("accuracy") is not None:
            row["gap_recovered"] = gap_recovered(teacher["accuracy"], baseline["accuracy"], row["accuracy"])
    return rows
