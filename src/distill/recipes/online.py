"""Online distillation: deep mutual learning (Zhang et al. 2018, "Deep Mutual Learning", CVPR).

No trained teacher: an untrained model built from the ``teacher:`` section and the student learn
side by side, each from the labels and the other's soft targets (method ``dml``). Both are held
in one ``Cohort`` module, so the one Trainer trains them with the student's recipe; the best
epoch is chosen on the student's validation score and every peer's weights from it are saved
as ``<peer>-best.safetensors``.
"""

from __future__ import annotations

from distill.errors import ConfigError
from distill.methods.dml import DML
from distill.models.cohort import Cohort
from distill.recipes.common import baseline
from distill.train.checkpoint import save_tensors

PEER_ROLES = ("peer_teacher", "student")


def run(exp, teacher, student, method) -> dict:
    from distill.experiment import Stage, model_meta

    cfg, data = exp.cfg, exp.data
    if not isinstance(method, DML):
        raise ConfigError(f"mode online trains peers with method 'dml', not '{cfg.distill.method}'; "
                          f"set distill.method: dml")
    if cfg.teacher.checkpoint:
        raise ConfigError("mode online trains the teacher-sized peer from scratch with the student; "
                          "remove teacher.checkpoint")
    if cfg.task != "classification":
        raise ConfigError("mode online (deep mutual learning) is defined for classification only")
    stages = baseline(exp)
    metas = [model_meta(cfg.teacher.model, data), model_meta(cfg.student.model, data)]
    cohort = Cohort([teacher, student])
    trainer = exp._trainer("cohort", cohort, cfg.student.train, method, meta={"peers": metas})
    fitted = exp._fit(trainer, cfg.student.train)  # ends with the cohort's best weights loaded
    for role, peer, meta in zip(PEER_ROLES, cohort.peers, metas, strict=True):
        if trainer.checkpoint_dir is not None:
            save_tensors(trainer.checkpoint_dir / f"{role}-best.safetensors", peer.state_dict(),
                         {"model": meta, "epoch": fitted.best_epoch})
        stages[role] = Stage(role, peer, fitted.seconds, fitted.best_epoch)
    return stages
