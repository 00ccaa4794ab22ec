"""Teacher-assistant KD (Mirzadeh et al. 2020, "Improved Knowledge Distillation via Teacher
Assistant", AAAI): teacher -> assistant -> student, each step with the configured method.

The assistant (``distill.assistant: {model, train}``) sits between teacher and student in size,
which narrows the capacity gap the student has to bridge.
"""

from __future__ import annotations

from distill.config.schema import AssistantConfig
from distill.pipeline.building import build_from_spec, check_compatible, model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import baseline, check_pair, distil, prepare_teacher


@register_mode(
    "takd", summary="teacher-assistant KD: teacher -> a mid-sized assistant -> student",
    paper="Mirzadeh et al. 2020, Improved Knowledge Distillation via Teacher Assistant, AAAI, arXiv:1902.03393",
    reads={"teacher.model / checkpoint / train": "the teacher, as in offline",
           "distill.assistant.model": "the assistant, between teacher and student in size",
           "distill.assistant.train": "the assistant's recipe", "student.model": "the student",
           "student.train": "the student's recipe", "distill.method / options": "the loss of both steps",
           "baseline": "train the student alone too", "cache": "the teacher's and the assistant's stored outputs"})
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    spec = cfg.distill.assistant or AssistantConfig()
    assistant = build_from_spec(spec.model, data, cfg.seed)
    check_compatible(teacher, assistant, data)
    check_pair(exp, teacher, assistant)
    check_pair(exp, assistant, student, method)
    stages = {"teacher": prepare_teacher(exp, teacher, model_meta(cfg.teacher.model, data))}
    stages.update(baseline(exp))
    stages["assistant"] = distil(exp, "assistant", assistant, spec.train, stages["teacher"].model,
                                 model_meta(spec.model, data))
    stages["student"] = distil(exp, "student", student, cfg.student.train, stages["assistant"].model,
                               model_meta(cfg.student.model, data), method)
    return stages
