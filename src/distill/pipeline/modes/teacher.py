"""Teacher only: train (or load) the teacher and evaluate it; no baseline, no student.

For a teacher that later runs reuse through ``teacher.checkpoint`` (the stand-in for a pretrained
model): e.g. trained once on every label, then distilled into students that see few labels and an
unlabelled pool (``data.labeled_subset`` with ``data.unlabeled: rest``, docs/data.md).
"""

from __future__ import annotations

from distill.pipeline.building import model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import prepare_teacher


@register_mode("teacher")
def run(exp, teacher, student, method) -> dict:
    return {"teacher": prepare_teacher(exp, teacher, model_meta(exp.cfg.teacher.model, exp.data))}
