"""Fitting students that are not trained by gradient steps (model ``gbdt``), in place of the loop.

The experiment hands every stage to ``Trainer.fit``; a model with ``fits_without_gradients``
goes here instead (one check in ``Experiment._fit``), with the same trainer object, so the rest
of the pipeline (teacher or cache, checkpoints, metrics.jsonl, evaluation, report) is unchanged:

- the stage's method needs a teacher (distillation): the teacher's outputs on every training
  input, without augmentation, are the regression targets (logits, or probabilities at the
  model's temperature);
- it does not (the baseline, trained on labels): the trees are fitted to the labels.

One "epoch" is logged, with the validation metrics, and ``<name>-best.safetensors`` is written.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from distill import distributed as dist
from distill.checkpoint import save_tensors
from distill.methods.base import Batch


def teacher_outputs(trainer, inputs: Tensor, targets: Tensor, chunk: int = 1024) -> Tensor:
    """The teacher's logits for every training input (by position, so a teacher cache serves them)."""
    parts = []
    for start in range(0, len(inputs), chunk):
        index = torch.arange(start, min(start + chunk, len(inputs)))
        dev = index.to(inputs.device)
        parts.append(trainer.teacher(Batch(inputs[dev], targets[dev], index=index)).logits.float().cpu())
    return torch.cat(parts)


def fit_tree_model(trainer, train, val_inputs: Tensor, val_targets: Tensor):
    from distill.train.trainer import FitResult  # the trainer module imports this one lazily

    model, started = trainer.model, time.perf_counter()
    inputs, targets = train.inputs, train.targets
    if trainer.needs.teacher:
        logits = teacher_outputs(trainer, inputs, targets)
        if model.target == "probabilities" and trainer.task == "classification":
            logits = torch.softmax(logits / model.temperature, dim=-1)
        elif trainer.task == "classification" and logits.shape[1] == 2:
            # Two classes: only the margin z1 - z0 matters (softmax ignores a shift), so one regressor
            # per iteration, the same number of trees as the classifier trained on the labels.
            logits = logits - logits[:, :1]
        model.fit_targets(inputs.cpu(), logits, seed=trainer.seed)
    else:
        labelled = targets.cpu() >= 0 if trainer.task == "classification" else slice(None)  # -1: unlabelled
        model.fit_labels(inputs.cpu()[labelled], targets.cpu()[labelled], trainer.task, seed=trainer.seed)
    model.to(trainer.device)
    seconds = time.perf_counter() - started
    record = {"model": trainer.name, "epoch": 1, "train_loss": None, "terms": {}, "lr": None,
              **trainer.validate(val_inputs, val_targets), "epoch_seconds": seconds}
    if trainer.checkpoint_dir is not None and dist.is_main():
        trainer.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        save_tensors(trainer._path("best"), model.state_dict(), {"model": trainer.model_meta, "epoch": 1})
        trainer.metrics_log.write(record)
    trainer.progress.log(f"  {trainer.name}: {model.feature.shape[0]} trees fitted in {seconds:.1f}s")
    return FitResult(trainer.name, 1, record.get("val_accuracy", -1.0), [record], seconds)
