"""One trial = one distill run of the config with the trial's values, scored on the validation split."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
from pathlib import Path

import optuna
from optuna.trial import TrialState

from distill.config.schema import ExperimentConfig
from distill.errors import NonFiniteLossError
from distill.io import atomic_write
from distill.pipeline.experiment import run_experiment
from distill.search.space import suggest, with_params

TEACHER_FILE = "teacher.safetensors"


def this_worker() -> str:
    """Who runs a trial (host:pid), so that a restarted worker can tell its own dead trials from live ones."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SurplusTrial(Exception):
    """Raised when other workers already run or finished the target number of trials; nothing was trained."""


def pruning_callback(trial: optuna.Trial, metric: str, scores: list[float]):
    """Epoch-end callback: report the student's validation score, raise TrialPruned when the pruner says so.

    A trial that has trained all its epochs is complete: pruning it then would save nothing.
    """

    def on_epoch(trainer, record: dict) -> None:
        if record.get("model") != "student":
            return
        value = float(record[metric])
        scores.append(value)
        trial.report(value, record["epoch"])
        last = trainer is not None and record["epoch"] >= trainer.cfg.epochs
        if not last and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}: {metric} {value:.4f}")

    return on_epoch


def teacher_saver(run_dir: Path, target: Path):
    """Epoch-end callback: once the teacher's last epoch is done, keep its best weights for later trials."""

    def on_epoch(trainer, record: dict) -> None:
        if record.get("model") == "teacher" and record["epoch"] == trainer.cfg.epochs:
            source = run_dir / "checkpoints" / "teacher-best.safetensors"
            atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))

    return on_epoch


class Objective:
    """Callable for ``study.optimize``; trains the teacher in the first trial only, when it can be shared."""

    def __init__(self, cfg: ExperimentConfig, folder: Path, callbacks=None, target: int | None = None):
        self.cfg, self.folder, self.target = cfg, Path(folder), target
        self.search = cfg.search
        self.callbacks = list(callbacks or [])
        self.share_teacher = not any(name.startswith("teacher.") for name in self.search.space)

    def teacher_checkpoint(self) -> str | None:
        if self.cfg.teacher.checkpoint or not self.share_teacher:
            return self.cfg.teacher.checkpoint
        path = self.folder / TEACHER_FILE
        return str(path.resolve()) if path.is_file() else None

    def surplus(self, trial: optuna.Trial) -> bool:
        """With several workers on one study: are ``target`` trials numbered before this one already
        finished or running? Trial numbers are handed out by the storage, so the workers agree."""
        if self.target is None:
            return False
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        earlier = [t for t in trial.study.get_trials(deepcopy=False, states=states) if t.number < trial.number]
        return len(earlier) >= self.target

    @staticmethod
    def same_point(trial: optuna.Trial) -> optuna.trial.FrozenTrial | None:
        """The earliest complete trial that tried exactly this trial's values, if any."""
        for earlier in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if earlier.number != trial.number and earlier.params == trial.params:
                return earlier
        return None

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", this_worker())
        if self.surplus(trial):
            trial.set_user_attr("surplus", True)
            trial.study.stop()
            raise SurplusTrial(f"trial {trial.number}: {self.target} trials are already done or running")
        params = {name: suggest(trial, name, spec) for name, spec in self.search.space.items()}
        earlier = self.same_point(trial)
        if earlier is not None:
            # A run is a function of its config and seed, so an exact repeat (TPE proposes the best point
            # again and again on a small categorical space) costs nothing: its score is the earlier one's.
            trial.set_user_attr("repeat_of", earlier.number)
            trial.set_user_attr("run_dir", earlier.user_attrs.get("run_dir"))
            return earlier.value
        relative = f"trials/trial-{trial.number:04d}"
        run_dir = self.folder / relative
        trial.set_user_attr("run_dir", relative)
        # Trials skip the baseline: the objective is the distilled student's validation score alone.
        cfg = with_params(self.cfg, params, search=None, baseline=False, name=f"{self.cfg.name}-trial{trial.number}")
        callbacks = [pruning_callback(trial, self.search.metric, scores := []), *self.callbacks]
        checkpoint = self.teacher_checkpoint()
        if checkpoint:
            cfg.teacher.checkpoint = checkpoint
        elif self.share_teacher:
            callbacks.insert(0, teacher_saver(run_dir, self.folder / TEACHER_FILE))
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the run's result table; the search prints one line
                run_experiment(cfg, run_dir, quiet=True, callbacks=callbacks)
        except NonFiniteLossError as exc:
            trial.set_user_attr("diverged", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        return max(scores) if self.search.direction == "maximize" else min(scores)
