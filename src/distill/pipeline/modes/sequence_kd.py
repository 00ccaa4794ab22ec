"""Sequence-level KD for causal LMs (Kim & Rush 2016): the student learns the teacher's own responses.

The teacher answers every training prompt once (greedy, or sampled with ``distill.lm.sample``),
the responses are kept in ``<cache>/sequences.safetensors`` (knowledge/sequence_cache.py), and
the student is trained with token cross-entropy on them instead of the references. The baseline
is the same student on the references, same initialisation and steps; the divergence method is
not used by this mode (it is the word-level alternative, mode offline).
"""

from __future__ import annotations

from pathlib import Path

from distill.data.lm_data import prompts_of, with_responses
from distill.knowledge.sequence_cache import teacher_sequences
from distill.models.causal_lm import generate_responses
from distill.pipeline.building import model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import baseline, check_pair, prepare_teacher, train_on_labels


@register_mode("sequence_kd")
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    check_pair(exp, teacher, student, method)
    stages = {"teacher": prepare_teacher(exp, teacher, model_meta(cfg.teacher.model, data))}
    stages.update(baseline(exp))
    g, lm = cfg.distill.lm, data.meta["lm"]
    prompts = prompts_of(data.train.inputs.cpu(), data.train.targets.cpu())
    settings = {"max_new_tokens": g.max_new_tokens, "sample": g.sample,
                "temperature": g.temperature if g.sample else None, "seed": cfg.seed}
    directory = Path(cfg.cache.dir) if cfg.cache.dir else exp.run_dir / "cache"

    def generate(ps):
        return generate_responses(stages["teacher"].model, ps, g.max_new_tokens, lm["eos_id"], lm["pad_id"],
                                  g.sample, g.temperature, g.batch_size, cfg.seed)

    responses, info = teacher_sequences(stages["teacher"].model, prompts, settings, directory, generate,
                                        exp.console.print)
    exp.teacher_sequences = info
    references = data.train
    data.train = with_responses(prompts, responses, lm["pad_id"])  # the student's training set: the teacher's
    data.train.inputs, data.train.targets = (data.train.inputs.to(exp.device), data.train.targets.to(exp.device))
    try:
        stages["student"] = train_on_labels(exp, "student", student, cfg.student.train,
                                            model_meta(cfg.student.model, data))
    finally:
        data.train = references
    return stages
