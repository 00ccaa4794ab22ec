"""``distill search``: an Optuna study over config fields, stored so an interrupted search resumes."""

from __future__ import annotations

import itertools
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console

from distill.config.schema import ExperimentConfig
from distill.errors import ConfigError
from distill.search.objective import Objective
from distill.search.results import write_results
from distill.search.space import check_space, grid_space

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def default_folder(cfg: ExperimentConfig) -> Path:
    return Path("runs") / f"search-{cfg.name}"


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    # The grid is queued as fixed trials (queue_grid), so the grid's sampler is never asked for a value.
    if kind in ("grid", "random"):
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def grid_points(cfg: ExperimentConfig) -> list[dict]:
    grid = grid_space(cfg.search.space)
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def queue_grid(study: optuna.Study, points: list[dict]) -> None:
    """Queue every grid point that has not finished and is not queued yet, in grid order.

    Optuna's GridSampler counts failed (interrupted) trials as visited and numbers its points by the
    trial number, so a resumed grid would skip or repeat points; fixed queued trials avoid both.
    """
    seen = [t.params for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.WAITING))]
    for point in points:
        if point not in seen:
            study.enqueue_trial(point)


def make_pruner(enabled: bool) -> optuna.pruners.BasePruner:
    if not enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)  # judged from epoch 2


def requeue_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage, names: set[str]) -> int:
    """Trials left RUNNING (a killed process) become FAIL; failed trials' values are queued to run again.

    Assumes one search process per study (no parallel workers).
    """
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING:
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    seen = [t.params for t in trials if t.state in (*FINISHED, TrialState.WAITING)]
    queued = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if set(t.params) == names and t.params not in seen:
            study.enqueue_trial(t.params)
            seen.append(t.params)
            queued += 1
    return queued


def run_search(cfg: ExperimentConfig, out: str | Path | None = None, trials: int | None = None,
               sampler: str | None = None, storage: str | None = None, quiet: bool = False,
               callbacks=None) -> dict:
    """Run (or resume) the study until ``trials`` trials have finished; returns search.json's content."""
    check_space(cfg)
    search = cfg.search
    kind = sampler or search.sampler
    points = grid_points(cfg) if kind == "grid" else []  # a grid error comes before any folder is made
    folder = Path(out) if out else default_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=quiet)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    target = trials or search.trials or len(points) or 20
    try:
        rdb = optuna.storages.RDBStorage(storage or f"sqlite:///{(folder / 'study.db').resolve()}")
    except Exception as exc:  # a bad URL, a missing driver, a server that is down: the user's to fix
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"--storage {storage}: cannot open the study storage ({type(exc).__name__}: {first}); "
                          f"give an SQLAlchemy URL such as sqlite:///study.db") from None
    study = optuna.create_study(study_name=cfg.name, storage=rdb, load_if_exists=True, direction=search.direction,
                                pruner=make_pruner(search.pruner))
    requeued = requeue_interrupted(study, rdb, set(search.space))
    queue_grid(study, points)
    study.sampler = make_sampler(kind, cfg.seed + len(study.trials))  # a resumed search draws new values
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    console.print(f"[bold]distill search[/bold] {folder}: {done} of {target} trials finished"
                  + (f", {requeued} interrupted trial(s) queued again" if requeued else ""))

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        console.print(f"trial {trial.number} {trial.state.name.lower()}: {search.metric} {value} {trial.params}")
        write_results(study, folder, cfg, kind)

    if target > done:
        study.optimize(Objective(cfg, folder, callbacks), n_trials=target - done, callbacks=[after_trial])
    meta = write_results(study, folder, cfg, kind)
    console.print(f"report: {folder / 'report.html'}")
    return meta
