"""Two-way distillation: a pretrained teacher keeps learning while it teaches (method ``two_way``).

The teacher is loaded from ``teacher.checkpoint`` or trained on labels first, exactly as for
offline KD. Then a copy of it and the student are trained together as one ``TwoWayPair`` with
the student's recipe, except that the teacher's learning rate is ``distill.teacher_lr`` (default
a tenth of the student's), following the same schedule. The teacher is not frozen, so there is
nothing to cache. The best epoch is chosen on the student's validation score;
``student-best.safetensors`` and ``teacher_two_way-best.safetensors`` hold both models from that
epoch, and the summary lists the pretrained teacher, the baseline, the student and the teacher
after two-way training.
"""

from __future__ import annotations

import copy

from distill.checkpoint import save_tensors
from distill.errors import ConfigError
from distill.methods.two_way import TwoWay
from distill.models.cohort import TwoWayPair
from distill.pipeline.building import model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import Stage, baseline, fit, make_trainer, prepare_teacher


@register_mode(
    "two_way", summary="a pretrained teacher keeps learning while it teaches (weak reverse KD from the student)",
    paper="Hinton et al. 2015 (KD) with a reverse term as in Zhang et al. 2018, Deep Mutual Learning; docs/two_way.md",
    reads={"teacher.model / checkpoint / train": "the teacher, loaded or trained on labels first",
           "student.model": "the student", "student.train": "the pair's recipe",
           "distill.teacher_lr": "the teacher's learning rate (default a tenth of the student's)",
           "distill.method": "must be two_way (its options: T, alpha, reverse_weight)",
           "distill.label_weight": "each model's cross-entropy", "baseline": "train the student alone too"})
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    if not isinstance(method, TwoWay):
        raise ConfigError(f"mode two_way trains the pair with method 'two_way', not '{cfg.distill.method}'; "
                          f"set distill.method: two_way")
    if cfg.task != "classification":
        raise ConfigError("mode two_way is defined for classification only")
    if cfg.cache.mode == "on":
        raise ConfigError("mode two_way's teacher keeps learning, so its outputs cannot be cached; "
                          "set cache.mode: auto (or off)")
    metas = {"teacher_two_way": model_meta(cfg.teacher.model, data), "student": model_meta(cfg.student.model, data)}
    stages = {"teacher": prepare_teacher(exp, teacher, metas["teacher_two_way"])}
    stages.update(baseline(exp))
    learner = copy.deepcopy(stages["teacher"].model).requires_grad_(True).train()  # the pretrained one stays as is
    teacher_lr = cfg.distill.teacher_lr or cfg.student.train.lr / 10
    pair = TwoWayPair(learner, student, teacher_lr_scale=teacher_lr / cfg.student.train.lr)
    trainer = make_trainer(exp, "two_way", pair, cfg.student.train, method, meta={"peers": list(metas.values())})
    fitted = fit(exp, trainer, cfg.student.train)  # ends with the pair's best weights loaded
    for (role, meta), model in zip(metas.items(), (pair.teacher, pair.student), strict=True):
        if trainer.checkpoint_dir is not None:
            save_tensors(trainer.checkpoint_dir / f"{role}-best.safetensors", model.state_dict(),
                         {"model": meta, "epoch": fitted.best_epoch})
        stages[role] = Stage(role, model, fitted.seconds, fitted.best_epoch)
    return {k: stages[k] for k in ("teacher", "baseline", "student", "teacher_two_way") if k in stages}
