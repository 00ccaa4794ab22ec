"""Online distillation: deep mutual learning (Zhang et al. 2018, "Deep Mutual Learning", CVPR).

No trained teacher: an untrained model built from the ``teacher:`` section, any further models
listed in ``distill.peers`` and the student learn side by side, each from the labels and the
others' soft targets (method ``dml``). All are held in one ``Cohort`` module (student last), so
the one Trainer trains them with the student's recipe; the best epoch is chosen on the student's
validation score and every peer's weights from it are saved as ``<peer>-best.safetensors``.

There is no frozen teacher, so there is nothing to cache (``cache.mode: on`` is an error), and
the peers learn from labels, so an unlabelled transfer set cannot join their training set.
"""

from __future__ import annotations

from distill.checkpoint import save_tensors
from distill.errors import ConfigError
from distill.methods.dml import DML
from distill.models.cohort import Cohort
from distill.pipeline.building import build_from_spec, check_compatible, model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import Stage, baseline, fit, make_trainer


def peer_roles(extra_peers: int) -> list[str]:
    return ["peer_teacher", *(f"peer{i + 1}" for i in range(extra_peers)), "student"]


@register_mode(
    "online", summary="deep mutual learning: untrained peers and the student learn from each other, no trained teacher",
    paper="Zhang, Xiang, Hospedales, Lu 2018, Deep Mutual Learning, CVPR, arXiv:1706.00384",
    reads={"teacher.model": "the teacher-sized peer, trained from scratch (no teacher.checkpoint)",
           "distill.peers": "further untrained peers (three or more models)", "student.model": "the student",
           "student.train": "the recipe of every peer", "distill.method": "must be dml (its options: T, alpha)",
           "distill.label_weight": "each peer's cross-entropy", "baseline": "train the student alone too"})
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    if not isinstance(method, DML):
        raise ConfigError(f"mode online trains peers with method 'dml', not '{cfg.distill.method}'; "
                          f"set distill.method: dml")
    if cfg.teacher.checkpoint:
        raise ConfigError("mode online trains the teacher-sized peer from scratch with the student; "
                          "remove teacher.checkpoint")
    if cfg.task != "classification":
        raise ConfigError("mode online (deep mutual learning) is defined for classification only")
    if cfg.cache.mode == "on":
        raise ConfigError("mode online has no frozen teacher whose outputs could be cached; "
                          "set cache.mode: auto (or off)")
    stages = baseline(exp)
    extra = [build_from_spec(spec, data, cfg.seed + 1 + i) for i, spec in enumerate(cfg.distill.peers)]
    for peer in extra:
        check_compatible(peer, student, data)
    specs = [cfg.teacher.model, *cfg.distill.peers, cfg.student.model]
    metas = [model_meta(spec, data) for spec in specs]
    cohort = Cohort([teacher, *extra, student])
    trainer = make_trainer(exp, "cohort", cohort, cfg.student.train, method, meta={"peers": metas})
    fitted = fit(exp, trainer, cfg.student.train)  # ends with the cohort's best weights loaded
    for role, peer, meta in zip(peer_roles(len(extra)), cohort.peers, metas, strict=True):
        if trainer.checkpoint_dir is not None:
            save_tensors(trainer.checkpoint_dir / f"{role}-best.safetensors", peer.state_dict(),
                         {"model": meta, "epoch": fitted.best_epoch})
        stages[role] = Stage(role, peer, fitted.seconds, fitted.best_epoch)
    return stages
