"""``distill search``: an Optuna study over config fields, stored so an interrupted search resumes."""

from __future__ import annotations

import itertools
import os
import socket
import time
import warnings
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console

from distill.config.schema import ExperimentConfig
from distill.errors import ConfigError
from distill.search.objective import Objective, SurplusTrial
from distill.search.results import trial_line, write_results
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


def left_over(trial: optuna.trial.FrozenTrial) -> bool:
    """A RUNNING trial whose process is gone: started on this machine by a process that no longer runs.

    Trials of live workers (here or on other machines) are left alone; one whose machine died is
    failed by Optuna's heartbeat once it is ``grace_period`` seconds old.
    """
    worker = trial.user_attrs.get("worker")
    if not worker:  # between its creation and its first line, or killed there (or an older distill's)
        started = trial.datetime_start
        return started is None or (datetime.now() - started).total_seconds() > 4 * HEARTBEAT_SECONDS
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def requeue_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage, names: set[str]) -> int:
    """Trials left RUNNING by a killed process become FAIL; failed trials' values are queued to run again.

    Several workers may share one study (``--storage``): their running trials are not touched.
    """
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING and left_over(t):
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    seen = [t.params for t in trials if t.state in (*FINISHED, TrialState.WAITING)]
    queued = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if set(t.params) == names and t.params not in seen:
            study.enqueue_trial(t.params)
            seen.append(t.params)
            queued += 1
    return queued


def with_driver(url: str) -> str:
    """``postgresql://`` with the psycopg (3) driver when it is installed (the `search` extra's driver):
    SQLAlchemy 2.0 would pick psycopg2 for a bare ``postgresql://``, 2.1 picks psycopg."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's storage, with a heartbeat so that workers on other machines see a dead worker's trials.

    A missing database driver or an unreachable server is a one-line error, not a traceback.
    """
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    try:
        for attempt in range(5):
            try:
                with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna's words
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(with_driver(url), heartbeat_interval=HEARTBEAT_SECONDS,
                                                      grace_period=4 * HEARTBEAT_SECONDS)
            except (IntegrityError, ProgrammingError):
                # Workers started together on an empty database both create Optuna's tables; the one that
                # loses the race finds them made (duplicate key / relation exists) and opens them next time.
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
    except ImportError as exc:  # Optuna wraps the driver's ModuleNotFoundError
        cause = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__
        driver = getattr(cause, "name", None) or "for this URL"
        scheme = url.split(":", 1)[0]
        raise ConfigError(f"--storage {scheme}://...: the database driver '{driver}' is not installed; "
                          f"pip install 'distill[search]' (it brings psycopg for PostgreSQL)") from None
    except Exception as exc:  # sqlalchemy's errors: bad URL, server down, wrong password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage {shown_url(url)}: cannot open it: {first}") from None


HEARTBEAT_SECONDS = 15


def shown_url(url: str) -> str:
    """The storage URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]


def stop_at(target: int):
    """Stop this worker once ``target`` trials are finished or running in the study (all workers counted)."""
    counted = (*FINISHED, TrialState.RUNNING)

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if len(study.get_trials(deepcopy=False, states=counted)) >= target:
            study.stop()

    return callback


def wait_for_other_workers(study: optuna.Study, console: Console, poll_seconds: float = 1.0) -> None:
    """Wait until no trial of the study runs any more, so that every worker reports the same final
    results and best trial. A dead worker's trial is failed by the heartbeat after the grace period."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running:
        console.print(f"waiting for {len(running)} trial(s) of other workers to finish", highlight=False)
    while running:
        time.sleep(poll_seconds)
        optuna.storages.fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def run_search(cfg: ExperimentConfig, out: str | Path | None = None, trials: int | None = None,
               sampler: str | None = None, storage: str | None = None, quiet: bool = False,
               callbacks=None, study_name: str | None = None) -> dict:
    """Run (or resume) the study until ``trials`` trials have finished; returns search.json's content."""
    check_space(cfg)
    search = cfg.search
    kind = sampler or search.sampler
    points = grid_points(cfg) if kind == "grid" else []  # a grid error comes before any folder is made
    folder = Path(out) if out else default_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=quiet)
    # ERROR: Optuna logs a failed trial's traceback as a warning, Ctrl-C included; distill reports errors itself.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    target = trials or search.trials or len(points) or 20
    url = storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    rdb = open_storage(url)
    name = study_name or cfg.name
    study = optuna.create_study(study_name=name, storage=rdb, load_if_exists=True, direction=search.direction,
                                pruner=make_pruner(search.pruner))
    if study.metric_names != [search.metric]:  # optuna-dashboard labels the objective with it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([search.metric])
    requeued = requeue_interrupted(study, rdb, set(search.space))
    queue_grid(study, points)
    study.sampler = make_sampler(kind, cfg.seed + len(study.trials))  # a resumed search draws new values
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    console.print(f"[bold]distill search[/bold] study '{name}' in {folder}: {done} of {target} trials finished"
                  + (f", {requeued} interrupted trial(s) queued again" if requeued else ""), highlight=False)
    console.print(f"browse it: optuna-dashboard {shown_url(url)}", highlight=False)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get("surplus"):
            return
        console.print(trial_line(trial, search.metric), highlight=False)
        write_results(study, folder, cfg, kind, name)

    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    if target > done + running:
        study.optimize(Objective(cfg, folder, callbacks, target=target), n_trials=target - done,
                       callbacks=[after_trial, stop_at(target)], catch=(SurplusTrial,))
    wait_for_other_workers(study, console)
    meta = write_results(study, folder, cfg, kind, name)
    console.print(f"report: {folder / 'report.html'}")
    return meta
