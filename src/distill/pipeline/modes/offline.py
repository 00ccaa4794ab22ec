"""Offline distillation (the default): a trained, frozen teacher teaches the student.

Hinton, Vinyals, Dean 2015 and most KD papers: train (or load) the teacher, train the student
alone as the baseline, then distil the same student initialisation from the frozen teacher.
"""

from __future__ import annotations

from distill.pipeline.building import model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import baseline, check_pair, distil, planned_views, prepare_teacher


@register_mode(
    "offline", summary="a trained, frozen teacher teaches the student (the default)",
    paper="Hinton, Vinyals, Dean 2015, Distilling the Knowledge in a Neural Network, arXiv:1503.02531",
    reads={"teacher.model": "the teacher", "teacher.checkpoint": "its trained weights (else it is trained first)",
           "teacher.train": "the teacher's recipe, when it is trained",
           "student.model": "the student (and the baseline, the same initial weights)",
           "student.train": "the recipe of the baseline and the distilled student",
           "distill.method / options / methods": "the distillation loss", "distill.label_weight": "the label term",
           "baseline": "train the student alone too", "cache": "the teacher's stored outputs"})
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    check_pair(exp, teacher, student, method)
    stages = {"teacher": prepare_teacher(exp, teacher, model_meta(cfg.teacher.model, data))}
    # the baseline trains on the distilled student's stored views (the cache's), in the same order
    stages.update(baseline(exp, planned_views(exp, method, cfg.student.train)))
    stages["student"] = distil(exp, "student", student, cfg.student.train, stages["teacher"].model,
                               model_meta(cfg.student.model, data), method)
    return stages
