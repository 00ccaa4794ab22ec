"""Reversed KD (Yuan, Tay, Li, Wang, Feng 2020, "Revisiting Knowledge Distillation via Label
Smoothing Regularization", CVPR): a small trained model teaches a larger one.

The ``teacher:`` section holds the SMALL model and ``student:`` the LARGER one. The stages are
offline distillation's; the mode exists so the role swap is explicit and checked, and the
summary reports it (gap recovered is meaningless when the teacher is the weaker model).
"""

from __future__ import annotations

from distill.errors import ConfigError
from distill.pipeline.building import model_meta, params
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import baseline, check_pair, distil, prepare_teacher


@register_mode(
    "reverse", summary="reversed KD: a small trained model teaches a larger one (teacher: holds the SMALL model)",
    paper="Yuan, Tay, Li, Wang, Feng 2020, Revisiting Knowledge Distillation via Label Smoothing "
          "Regularization, CVPR, arXiv:1909.11723",
    reads={"teacher.model": "the SMALL model, trained first", "student.model": "the LARGER model that learns from it",
           "teacher.train / student.train": "their recipes", "distill.method / options": "the loss",
           "baseline": "train the larger model alone too"})
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    if params(teacher) >= params(student):
        raise ConfigError(
            f"mode reverse: the teacher slot holds the small model and the student the larger one, but the "
            f"teacher has {params(teacher):,} parameters and the student {params(student):,}; swap them")
    check_pair(exp, teacher, student, method)
    stages = {"teacher": prepare_teacher(exp, teacher, model_meta(cfg.teacher.model, data))}
    stages.update(baseline(exp))
    stages["student"] = distil(exp, "student", student, cfg.student.train, stages["teacher"].model,
                               model_meta(cfg.student.model, data), method)
    return stages
