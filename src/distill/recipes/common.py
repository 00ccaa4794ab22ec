"""Steps the modes share: train on labels, train or load the teacher, distil from a frozen model."""

from __future__ import annotations

from torch import nn

from distill.checkpoint import load_weights_into
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.methods.base import Method
from distill.methods.combined import method_from_config
from distill.methods.regression import supervised_for
from distill.train.trainer import input_preparer


def train_on_labels(exp, role: str, model: nn.Module, train_cfg, meta: dict):
    trainer = exp._trainer(role, model, train_cfg, supervised_for(exp.cfg.task, train_cfg.label_smoothing), meta=meta)
    return exp._fit(trainer, train_cfg)


def ready_teacher(exp, teacher: nn.Module, meta: dict):
    """The configured teacher, loaded from ``teacher.checkpoint`` or trained on labels, then frozen."""
    from distill.experiment import Stage

    cfg = exp.cfg
    if cfg.teacher.checkpoint:
        load_weights_into(teacher, cfg.teacher.checkpoint)
        stage = Stage("teacher", teacher.to(exp.device))
    else:
        stage = train_on_labels(exp, "teacher", teacher, cfg.teacher.train, meta)
    freeze(stage.model)
    return stage


def baseline(exp) -> dict:
    """{"baseline": Stage} when the config asks for the student trained alone, else {}."""
    from distill.experiment import build_from_spec, model_meta

    cfg = exp.cfg
    if not cfg.baseline:
        return {}
    model = build_from_spec(cfg.student.model, exp.data, cfg.seed)
    return {"baseline": train_on_labels(exp, "baseline", model, cfg.student.train,
                                        model_meta(cfg.student.model, exp.data))}


def distil(exp, role: str, model: nn.Module, train_cfg, teacher: nn.Module, meta: dict,
           method: Method | None = None):
    """Train ``model`` from the frozen ``teacher`` with the configured method (a fresh instance unless given)."""
    method = method or method_from_config(exp.cfg.distill)
    prepare = input_preparer(teacher, exp.cfg.runtime.channels_last)
    live = LiveTeacher(freeze(teacher), method.needs().teacher_modules, prepare=prepare)
    try:
        return exp._fit(exp._trainer(role, model, train_cfg, method, teacher=live, meta=meta), train_cfg)
    finally:
        live.close()


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
