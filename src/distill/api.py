"""The small Python API.

    import distill
    summary = distill.run("examples/quick.yaml")                         # a whole experiment
    result = distill.distill_model(teacher, student, data, method="kd", temperature=4)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from distill.config.load import load_config
from distill.config.schema import ExperimentConfig, TrainConfig
from distill.data.batches import BatchSource, InMemoryBatches
from distill.data.bundle import DataBundle
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.methods.base import build_method
from distill.pipeline.experiment import resolve_device, run_experiment
from distill.train.trainer import FitResult, Trainer, input_preparer


def run(config: str | Path | dict | ExperimentConfig, out: str | Path | None = None, resume: bool = False,
        overrides: list[str] | None = None, quiet: bool = True) -> dict:
    """Run a whole experiment (what `distill run` does) and return its summary."""
    if isinstance(config, ExperimentConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = load_config(data=config, overrides=overrides)
    else:
        cfg = load_config(config, overrides)
    return run_experiment(cfg, Path(out) if out else None, resume=resume, quiet=quiet)


def train_model(model: nn.Module, data: DataBundle, *, teacher: nn.Module | None = None, method: str = "supervised",
                method_options: dict[str, Any] | None = None, train: TrainConfig | dict | None = None,
                seed: int = 0, device: str = "auto", checkpoint_dir: str | Path | None = None,
                batches: BatchSource | None = None, resume: bool = False, channels_last: bool = True,
                name: str = "model", task: str = "classification", label_weight: float | None = None) -> FitResult:
    """Train any ``nn.Module`` on a DataBundle, alone or from a frozen teacher; best weights end up in ``model``.

    ``batches`` replaces the in-memory pipeline, e.g. ``LoaderBatches(DataLoader(...))`` for large data.
    ``task="regression"`` validates on MSE/MAE/R^2 and keeps the lowest-MSE epoch (use a regression method).
    ``label_weight`` weighs the trainer's label loss; None = the method's default (kd 0.1, dkd 1.0, ...).
    """
    train_cfg = train if isinstance(train, TrainConfig) else TrainConfig(**(train or {}))
    device_ = resolve_device(device)
    live = None
    if teacher is not None:
        teacher = freeze(teacher.to(device_))
    method_obj = build_method(method, method_options)
    if method_obj.needs().teacher:
        if teacher is None:
            raise ValueError(f"method '{method}' needs a teacher")
        live = LiveTeacher(teacher, method_obj.needs().teacher_modules, input_preparer(teacher, channels_last))
    if batches is None:
        batches = InMemoryBatches(data.train.inputs.to(device_), data.train.targets.to(device_),
                                  train_cfg.batch_size, augment=data.augment, seed=seed)
    trainer = Trainer(name, model, train_cfg, method_obj, teacher=live, seed=seed, device=device_,
                      checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, channels_last=channels_last,
                      task=task, label_weight=label_weight)
    try:
        return trainer.fit(batches, data.val.inputs, data.val.targets, resume=resume)
    finally:
        if live:
            live.close()


def distill_model(teacher: nn.Module, student: nn.Module, data: DataBundle, method: str = "kd",
                  train: TrainConfig | dict | None = None, seed: int = 0, label_weight: float | None = None,
                  **method_options: Any) -> FitResult:
    """Distill ``teacher`` (frozen) into ``student`` with a registered method; ``label_weight`` as ``train_model``."""
    return train_model(student, data, teacher=teacher, method=method, method_options=method_options,
                       train=train, seed=seed, name="student", label_weight=label_weight)
