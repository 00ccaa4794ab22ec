"""Experiment trackers (`report_to: [tensorboard, mlflow]`) and epoch callbacks from imported modules.

A tracker is an epoch callback plus a final-summary hook: every epoch's loss terms, learning rate,
validation metrics and time per model (teacher, baseline, student, ...), then the test-split
summary, as Hugging Face Trainer and Lightning users expect. The packages are optional extras
(`pip install 'distill[tensorboard]'`, `'distill[mlflow]'`) imported only when asked for.

Own epoch callbacks: a module given to ``imports:`` / ``--import`` decorates a function with
``@distill.on_epoch``; every run in that process then calls it as ``callback(trainer, record)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from distill.errors import ConfigError

EPOCH_CALLBACKS: list[Callable] = []


def on_epoch(callback: Callable) -> Callable:
    """Decorator: call ``callback(trainer, record)`` after every epoch of every model of every run."""
    if callback not in EPOCH_CALLBACKS:
        EPOCH_CALLBACKS.append(callback)
    return callback


def epoch_scalars(record: dict) -> dict[str, float]:
    """The numbers of one metrics.jsonl line, as flat scalar names: train_loss, loss/soft, lr, val_accuracy."""
    scalars = {}
    for key, value in record.items():
        if key == "terms":
            scalars.update({f"loss/{term}": float(v) for term, v in value.items()})
        elif isinstance(value, int | float) and not isinstance(value, bool) and key != "epoch":
            scalars[key] = float(value)
    return scalars


def summary_scalars(summary: dict) -> dict[str, float]:
    """Test-split numbers per model (test/student/accuracy, ...) and the gap recovered."""
    scalars = {}
    for role, entry in summary.get("models", {}).items():
        for key, value in entry.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                scalars[f"test/{role}/{key}"] = float(value)
    for key in ("gap_recovered", "compression"):
        if isinstance(summary.get(key), int | float):
            scalars[key] = float(summary[key])
    return scalars


class TensorBoardTracker:
    """Event files in ``<run folder>/tensorboard`` (``tensorboard --logdir runs``)."""

    def __init__(self, run_dir: Path, config: dict):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("report_to: tensorboard needs the tensorboard package: "
                              "pip install 'distill[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=1) + "\n```", 0)

    def __call__(self, trainer, record: dict) -> None:
        for name, value in epoch_scalars(record).items():
            self.writer.add_scalar(f"{record['model']}/{name}", value, record["epoch"])
        self.writer.flush()

    def finish(self, summary: dict) -> None:
        for name, value in summary_scalars(summary).items():
            self.writer.add_scalar(name, value, 0)
        self.writer.close()


class MLflowTracker:
    """One MLflow run per experiment (``MLFLOW_TRACKING_URI``, default ./mlruns): the config as params,
    epochs as metrics with step = epoch, the summary as metrics, summary.json and report.html as artifacts."""

    def __init__(self, run_dir: Path, config: dict):
        try:
            import mlflow
        except ImportError:
            raise ConfigError("report_to: mlflow needs the mlflow package: pip install 'distill[mlflow]'") from None
        self.mlflow, self.run_dir = mlflow, Path(run_dir)
        try:
            self.run = mlflow.start_run(run_name=config.get("name"))
        except Exception as exc:  # noqa: BLE001 - mlflow's errors: tracking URI, store, server
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"report_to: mlflow could not start a run ({first}); set MLFLOW_TRACKING_URI, "
                              f"e.g. sqlite:///mlflow.db") from None
        flat = _flat(config)
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def __call__(self, trainer, record: dict) -> None:
        metrics = {f"{record['model']}.{name.replace('/', '.')}": v for name, v in epoch_scalars(record).items()}
        self.mlflow.log_metrics(metrics, step=record["epoch"])

    def finish(self, summary: dict) -> None:
        self.mlflow.log_metrics({k.replace("/", "."): v for k, v in summary_scalars(summary).items()})
        for name in ("summary.json", "report.html", "config.yaml"):
            if (self.run_dir / name).is_file():
                self.mlflow.log_artifact(str(self.run_dir / name))
        self.mlflow.end_run()


TRACKERS = {"tensorboard": TensorBoardTracker, "mlflow": MLflowTracker}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}  # (module, extra)


def check_trackers(names: list[str]) -> None:
    """Each tracker's package is installed (checked without importing it), or a one-line error."""
    import importlib.util
    import sys

    def available(module: str) -> bool:
        if module in sys.modules:  # imported already (or blocked: None)
            return sys.modules[module] is not None
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    for name in names:
        module, extra = PACKAGES[name]
        if not available(module):
            raise ConfigError(f"report_to: {name} needs the {module} package: pip install 'distill[{extra}]'")


def open_trackers(names: list[str], run_dir: Path, config: dict) -> list:
    trackers = []
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"report_to: unknown tracker '{name}'; known: {', '.join(TRACKERS)}")
        trackers.append(TRACKERS[name](run_dir, config))
    return trackers
