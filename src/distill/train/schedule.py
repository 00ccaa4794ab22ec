"""Optimizers and per-step learning-rate schedules (warm-up, cosine, step)."""

from __future__ import annotations

import math

import torch
from torch import nn

from distill.config.schema import TrainConfig


def build_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def planned_epochs(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The epochs a fit runs: ``epochs``, or as many (the last one cut short) as ``max_steps`` needs."""
    if cfg.max_steps is None:
        return cfg.epochs
    return max(1, math.ceil(cfg.max_steps / max(1, steps_per_epoch)))


def learning_rate(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate for optimizer step ``step`` (0-based); a pure function so resume needs no state."""
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    return cfg.lr
