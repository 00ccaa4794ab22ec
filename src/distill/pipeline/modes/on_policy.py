"""On-policy distillation for causal LMs (GKD, Agarwal et al. 2024, "On-Policy Distillation of Language
Models: Learning from Self-Generated Mistakes"; TRL's GKDTrainer).

With probability ``distill.lm.lmbda`` a batch's responses are replaced by the student's own
samples (at ``distill.lm.temperature``, up to ``max_new_tokens``) and the live teacher scores
every token of them with the configured divergence (default forward KL; GKD's paper uses the
generalized JSD, method gkd); the other batches keep the data set's responses, whose teacher
distributions come from the top-k cache when ``cache`` allows it. The baseline is the student on
the references, same initialisation and steps.
"""

from __future__ import annotations

import random

from distill.data.lm_data import lm_batch, prompts_of, with_responses
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.models.causal_lm import generate_responses
from distill.pipeline.building import model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import (
    Stage,
    baseline,
    batches,
    check_pair,
    lm_teacher_knowledge,
    make_trainer,
    prepare_teacher,
)


class OnPolicyBatches:
    """The data's batches, each replaced with probability ``lmbda`` by the student's sampled responses.

    A replaced batch has no sample positions (``index`` None), so a cached teacher scores it live.
    The draws depend on (seed, epoch, batch), so a resumed run samples the same batches.
    """

    def __init__(self, base, student, lmbda: float, max_new_tokens: int, temperature: float, eos_id, pad_id: int,
                 seed: int = 0):
        self.base, self.student, self.lmbda = base, student, lmbda
        self.max_new_tokens, self.temperature, self.eos_id, self.pad_id, self.seed = (
            max_new_tokens, temperature, eos_id, pad_id, seed)
        self.sampled = 0

    def __len__(self) -> int:
        return len(self.base)

    def epoch(self, epoch: int):
        draw = random.Random(self.seed * 1_000_003 + epoch)
        for number, batch in enumerate(self.base.epoch(epoch)):
            if draw.random() >= self.lmbda:
                yield batch
                continue
            prompts = prompts_of(batch.inputs, batch.targets)
            responses = generate_responses(self.student, prompts, self.max_new_tokens, self.eos_id, self.pad_id,
                                           do_sample=True, temperature=self.temperature, batch_size=len(prompts),
                                           seed=self.seed * 1_000_003 + epoch * 10_007 + number)
            split = with_responses(prompts, responses, self.pad_id)
            self.sampled += 1
            yield lm_batch(split.inputs.to(batch.inputs.device), split.targets.to(batch.inputs.device))


@register_mode("on_policy")
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    check_pair(exp, teacher, student, method)
    stages = {"teacher": prepare_teacher(exp, teacher, model_meta(cfg.teacher.model, data))}
    stages.update(baseline(exp))
    g, lm, train_cfg = cfg.distill.lm, data.meta["lm"], cfg.student.train
    live = LiveTeacher(freeze(stages["teacher"].model))
    try:
        # every batch on-policy: nothing to cache; else the data's batches read the top-k cache
        teacher_fn = live if g.lmbda >= 1 else lm_teacher_knowledge(exp, live, "student", train_cfg, method)
        trainer = make_trainer(exp, "student", student, train_cfg, method, teacher=teacher_fn,
                               meta=model_meta(cfg.student.model, data))
        source = OnPolicyBatches(batches(exp, train_cfg), trainer.model, g.lmbda, g.max_new_tokens, g.temperature,
                                 lm["eos_id"], lm["pad_id"], cfg.seed)
        result = trainer.fit(source, data.val.inputs, data.val.targets, resume=exp.resume)
        exp.on_policy = {"lmbda": g.lmbda, "sampled_batches": source.sampled}
    finally:
        live.close()
    stages["student"] = Stage("student", trainer.model, result.seconds, result.best_epoch)
    return stages
