"""What a search leaves in its folder: trials.json, trials.csv, search.json, best.yaml and report.html."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from distill.config.load import dump_config
from distill.config.schema import ExperimentConfig
from distill.io import atomic_write_text
from distill.report.html import write_report
from distill.search.space import with_params


def trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    value = trial.value
    if value is None and trial.intermediate_values:  # a pruned trial: its last reported score
        value = trial.intermediate_values[max(trial.intermediate_values)]
    seconds = trial.duration.total_seconds() if trial.duration else None
    return {"number": trial.number, "state": trial.state.name, "value": value, "params": trial.params,
            "seconds": seconds, "run_dir": trial.user_attrs.get("run_dir"),
            "epochs": len(trial.intermediate_values), "note": trial.user_attrs.get("diverged") or (
                f"same values as trial {trial.user_attrs['repeat_of']}" if "repeat_of" in trial.user_attrs else None)}


def short_value(value) -> str:
    """4 significant digits for floats (0.0123, 4.0, 0.6235), the rest as written."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """One printed line per trial: state, score and the values tried, rounded."""
    row = trial_row(trial)
    value = "-" if row["value"] is None else f"{row['value']:.4f}"
    params = ", ".join(f"{name}={short_value(v)}" for name, v in trial.params.items())
    state = trial.state.name.lower()
    if trial.state == TrialState.PRUNED and row["epochs"]:
        state += f" after epoch {row['epochs']}"
    repeat = trial.user_attrs.get("repeat_of")
    note = f"  (same values as trial {repeat}: its score, not trained again)" if repeat is not None else ""
    return f"trial {trial.number} {state}: {metric} {value}  {params}{note}"


def study_importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator) over the complete trials; empty when it
    cannot tell yet."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():  # "importances will be equal" with very few trials: shown as they are
            warnings.simplefilter("ignore")
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # e.g. every complete trial has the same value or the same params
        return {}


def trials_csv(rows: list[dict]) -> str:
    names = sorted({k for r in rows for k in r["params"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "state", "value", *names, "seconds", "epochs", "run_dir"])
    for r in rows:
        writer.writerow([r["number"], r["state"], r["value"], *(r["params"].get(n) for n in names),
                         r["seconds"], r["epochs"], r["run_dir"]])
    return out.getvalue()


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if complete else None


def write_results(study: optuna.Study, folder: Path, cfg: ExperimentConfig, sampler: str,
                  study_name: str | None = None) -> dict:
    # surplus trials (another worker had reached the target) never trained anything
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.WAITING and not t.user_attrs.get("surplus")]
    atomic_write_text(folder / "trials.json", json.dumps(rows, indent=1))
    atomic_write_text(folder / "trials.csv", trials_csv(rows))
    best = best_trial(study)
    meta = {"name": cfg.name, "study_name": study_name or study.study_name, "metric": cfg.search.metric, "direction": cfg.search.direction, "sampler": sampler,
            "space": {k: v.model_dump(exclude_none=True) for k, v in cfg.search.space.items()},
            "best": None, "best_run_dir": None, "importances": study_importances(study),
            "importance_method": f"optuna.importance.get_param_importances (Optuna {optuna.__version__}'s "
                                 "default evaluator), complete trials"}
    if best is not None:
        meta["best"] = {"number": best.number, "value": best.value, "params": best.params}
        meta["best_run_dir"] = best.user_attrs.get("run_dir")
        header = (f"# Best of {len(rows)} trials (trial {best.number}): {cfg.search.metric} {best.value:.4f} "
                  f"on the validation split.\n# Run it: distill run {folder / 'best.yaml'}\n")
        atomic_write_text(folder / "best.yaml", header + dump_config(with_params(cfg, best.params, search=None)))
    atomic_write_text(folder / "search.json", json.dumps(meta, indent=1))
    write_report(folder)
    return meta
