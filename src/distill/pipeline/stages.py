"""The stages every mode is made of: check a pair, prepare the teacher, train on labels, distil.

A mode (``pipeline/modes/``) is a short sequence of these calls. :func:`distil` is the one way a
frozen model teaches another: it always gets the teacher cache (as ``cache.mode`` allows), the
transfer set (when the data has one and the caller allows it) and the method probe, whichever
mode calls it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from distill import distributed as dist
from distill.checkpoint import load_weights_into
from distill.config.schema import TrainConfig
from distill.data.augment import with_mixing
from distill.data.batches import InMemoryBatches
from distill.data.lazy import cat, is_lazy
from distill.data.lm_data import LMBatches
from distill.data.stream import DEFAULT_WORKERS, batch_source
from distill.data.text import BucketedBatches, is_token_ids
from distill.errors import ConfigError
from distill.knowledge.cache import CacheOptions, build_cache, choose_teacher
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.knowledge.token_cache import (
    CachedTokenTeacher,
    TokenCacheOptions,
    build_token_cache,
    loss_token_counts,
    token_cache_key,
)
from distill.methods.base import Method
from distill.methods.combined import method_from_config
from distill.methods.regression import supervised_for
from distill.models.causal_lm import head_size, load_lm_tokenizer
from distill.models.predict import input_preparer
from distill.pipeline.building import build_from_spec, model_meta
from distill.train.trainer import Trainer, probe_method
from distill.train.trees import fit_tree_model

if TYPE_CHECKING:
    from distill.pipeline.experiment import Experiment


@dataclass
class Stage:
    role: str
    model: nn.Module
    seconds: float = 0.0
    best_epoch: int | None = None


# -- training one model -----------------------------------------------------------------------------
def make_trainer(exp: Experiment, role: str, model: nn.Module, train_cfg: TrainConfig, method: Method,
                 teacher=None, meta: dict | None = None) -> Trainer:
    cfg = exp.cfg
    return Trainer(
        role, model, train_cfg, method, teacher=teacher, seed=cfg.seed, device=exp.device,
        checkpoint_dir=exp.run_dir / "checkpoints", metrics_log=exp.metrics, progress=exp.progress,
        channels_last=cfg.runtime.channels_last, model_meta=meta,
        eval_batch_size=cfg.evaluate.eval_batch_size, callbacks=exp.callbacks, task=cfg.task,
        precision=cfg.runtime.precision, compile=cfg.runtime.compile, parallel=cfg.runtime.parallel,
    )


def training_set(exp: Experiment, transfer=None) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = exp.data.train.inputs, exp.data.train.targets
    if transfer is not None:  # the unlabelled pool (target -1), distillation only; files on disk are joined lazily
        inputs = cat(inputs, transfer.inputs)
        targets = torch.cat([targets, transfer.targets.to(targets.device)])
    return inputs, targets


def batches(exp: Experiment, train_cfg: TrainConfig, views: int | None = None,
            transfer=None) -> InMemoryBatches | BucketedBatches | LMBatches:
    inputs, targets = training_set(exp, transfer)
    world = dist.world_size()
    if train_cfg.batch_size % world:
        raise ConfigError(f"batch_size {train_cfg.batch_size} is the global batch; it must divide evenly "
                          f"over {world} processes")
    if exp.cfg.task == "causal_lm":  # token sequences, each batch trimmed to its last loss position
        return LMBatches(inputs, targets, train_cfg.batch_size, seed=exp.cfg.seed,
                         buckets=exp.cfg.data.lm.length_buckets, rank=dist.rank(), world_size=world,
                         epoch_steps=exp.cfg.data.lm.epoch_steps)
    if world == 1 and is_token_ids(inputs) and exp.cfg.data.text.length_buckets:
        # Sentences of similar length per batch (opt-in: less random batches): text models drop the
        # all-padding columns, so an epoch costs about the sentences' own lengths, not each batch's longest.
        pad_id = exp.data.meta.get("model_context", {}).get("pad_id") or 0
        return BucketedBatches(inputs, targets, train_cfg.batch_size, pad_id=pad_id, seed=exp.cfg.seed)
    # Inputs on disk (data.stream) are read by DataLoader workers; both keep the same order and views.
    return batch_source(inputs, targets, train_cfg.batch_size // world, workers=exp.cfg.data.workers,
                        device=exp.device, shuffle=True, augment=recipe_augment(exp, train_cfg, inputs),
                        seed=exp.cfg.seed, rank=dist.rank(), world_size=world, views=views)


def recipe_augment(exp: Experiment, train_cfg: TrainConfig, inputs: torch.Tensor):
    """The data's augmentation plus the recipe's mixup/cutmix (the teacher sees the same mixed view)."""
    augment = with_mixing(exp.data.augment, train_cfg.mixup, train_cfg.cutmix, train_cfg.mix_prob)
    if augment is not None and getattr(augment, "mixes", False) and (inputs.dim() != 4 or not inputs.is_floating_point()):
        raise ConfigError(f"train.mixup/cutmix blend images, but {exp.data.name} inputs have shape "
                          f"{tuple(inputs.shape[1:])}; set mixup and cutmix to 0")
    return augment


def planned_views(exp: Experiment, method: Method, train_cfg: TrainConfig) -> int | None:
    """The stored views a distilled student will cycle through when its teacher is cached, else None.

    The baseline trains on the same views in the same order, so that it differs from the distilled
    student in the loss only (the same recipe, down to the data stream).
    """
    c, needs = exp.cfg.cache, method.needs()
    inputs, _ = training_set(exp)
    if c.mode == "off" or not needs.teacher or (needs.teacher_modules and not inputs.is_floating_point()):
        return None
    if recipe_augment(exp, train_cfg, inputs) is None:
        return None
    return min(c.views, train_cfg.epochs)


def fit(exp: Experiment, trainer: Trainer, train_cfg: TrainConfig, views: int | None = None, transfer=None) -> Stage:
    if getattr(trainer.model, "fits_without_gradients", False):  # gbdt: fitted, not trained (train/trees.py)
        result = fit_tree_model(trainer, batches(exp, train_cfg, views, transfer), exp.data.val.inputs,
                                exp.data.val.targets)
        return Stage(trainer.name, trainer.model, result.seconds, result.best_epoch)
    result = trainer.fit(batches(exp, train_cfg, views, transfer), exp.data.val.inputs, exp.data.val.targets,
                         resume=exp.resume)
    return Stage(trainer.name, trainer.model, result.seconds, result.best_epoch)


# -- the stages -------------------------------------------------------------------------------------
def check_pair(exp: Experiment, teacher: nn.Module, student: nn.Module, method: Method | None = None) -> None:
    """Layer paths and shapes of the method on the untrained pair, not after hours of teacher training.

    A fresh method instance is probed, so the one that trains is set up on the trained teacher.
    """
    method = method_from_config(exp.cfg.distill) if method is None else method
    if teacher is student:
        teacher = copy.deepcopy(student)  # born-again: the same architecture teaches itself
    probe_teacher = LiveTeacher(teacher, method.needs().teacher_modules)
    lm = exp.cfg.task == "causal_lm"
    try:
        probe_method(method_from_config(exp.cfg.distill), student, probe_teacher, exp.data.val.inputs,
                     targets=exp.data.val.targets if lm else None)
    finally:
        probe_teacher.close()
        if not lm:  # a causal LM teacher is pretrained and stays frozen
            teacher.requires_grad_(True).train()


def train_on_labels(exp: Experiment, role: str, model: nn.Module, train_cfg: TrainConfig, meta: dict,
                    views: int | None = None) -> Stage:
    supervised = supervised_for(exp.cfg.task, train_cfg.label_smoothing)
    return fit(exp, make_trainer(exp, role, model, train_cfg, supervised, meta=meta), train_cfg, views)


def prepare_teacher(exp: Experiment, teacher: nn.Module, meta: dict | None = None) -> Stage:
    """The configured teacher, loaded from ``teacher.checkpoint`` or trained on labels, then frozen."""
    cfg = exp.cfg
    if cfg.task == "causal_lm" and not cfg.teacher.checkpoint:
        # A language-model teacher is pretrained: teacher.train is not used (training it on the small
        # distillation set would only make it forget).
        exp.console.print(f"teacher: pretrained {teacher.source or 'default (SmolLM2-135M-Instruct)'}, not trained "
                          f"(task causal_lm: teacher.train is not used)")
        stage = Stage("teacher", teacher.to(exp.device))
    elif cfg.teacher.checkpoint:
        load_weights_into(teacher, cfg.teacher.checkpoint)
        stage = Stage("teacher", teacher.to(exp.device))
        exp.console.print(f"teacher: loaded {cfg.teacher.checkpoint}")
    else:
        meta = model_meta(cfg.teacher.model, exp.data) if meta is None else meta
        stage = train_on_labels(exp, "teacher", teacher, cfg.teacher.train, meta)
    freeze(stage.model)
    return stage


def baseline(exp: Experiment, views: int | None = None) -> dict[str, Stage]:
    """{"baseline": Stage} when the config asks for the student trained alone, else {}.

    ``views``: cycle through that many stored views (the distilled student's, see :func:`planned_views`).
    ``baseline_train`` replaces the student's recipe (and its views) when given.
    """
    cfg = exp.cfg
    if not cfg.baseline:
        return {}
    model = build_from_spec(cfg.student.model, exp.data, cfg.seed)
    recipe = cfg.student.train
    if cfg.baseline_train is not None:  # its own recipe: fresh augmentation draws, not the student's stored views
        recipe, views = cfg.baseline_train, None
    return {"baseline": train_on_labels(exp, "baseline", model, recipe, model_meta(cfg.student.model, exp.data),
                                        views)}


def teacher_knowledge(exp: Experiment, live: LiveTeacher, modules: tuple[str, ...], role: str,
                      train_cfg: TrainConfig, transfer=None, method: Method | None = None):
    """The cached teacher when ``cache`` allows it (see knowledge/cache.py), else the live one.

    The distilled student's cache lives in ``<run>/cache`` (or ``cache.dir``); other distilled
    roles (an assistant, later generations) get ``cache/<role>``, so each keeps its own.
    """
    c = exp.cfg.cache
    inputs, targets = training_set(exp, transfer)
    if exp.cfg.task == "causal_lm":
        return lm_teacher_knowledge(exp, live, role, train_cfg, method or method_from_config(exp.cfg.distill),
                                    inputs, targets)
    if modules and not inputs.is_floating_point():
        # Text models trim padding per batch, so hooked features vary in length and cannot be stored
        # per sample; their logits could be, but a method asking for features needs both.
        if c.mode == "on":
            raise ConfigError("cache.mode=on cannot store hooked features of token-id inputs; use cache.mode=auto")
        return live
    workers = exp.cfg.data.workers
    options = CacheOptions(views=c.views, dtype=c.dtype, top_k=c.top_k, memory_mb=c.memory_mb,
                           workers=DEFAULT_WORKERS if workers is None else workers)
    if is_lazy(inputs):  # files on disk: the build holds a training batch's worth of images at a time, no more
        options = replace(options, chunk=min(options.chunk, train_cfg.batch_size))
    directory = Path(c.dir) if c.dir else exp.run_dir / "cache"
    if role != "student":
        directory = directory / role
    # the views of the distilled role's own recipe (its mixup/cutmix included): what its batches will hold
    augment = recipe_augment(exp, train_cfg, inputs)
    return choose_teacher(c.mode, live, lambda: build_cache(
        live, inputs, targets, augment, exp.cfg.seed, train_cfg.epochs, options, directory, exp.device, modules,
        log=exp.console.print))


LM_TOP_K = 32  # causal_lm's default k when cache.top_k is null: 196 bytes per token with float16


def method_parts(method: Method) -> list[Method]:
    """The methods of a combination, or the method alone."""
    return list(getattr(method, "parts", [])) or [method]


def method_temperature(method: Method) -> float | None:
    """The one temperature of a token method (or of all parts of a combination); None when they differ."""
    temperatures = {float(getattr(p, "temperature", 1.0)) for p in method_parts(method)}
    return temperatures.pop() if len(temperatures) == 1 else None


def lm_teacher_knowledge(exp: Experiment, live: LiveTeacher, role: str, train_cfg: TrainConfig, method: Method,
                         inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None):
    """A causal LM's teacher: its top-k next-token distributions over the training tokens, computed once and
    read by sample index (knowledge/token_cache.py), when ``cache`` allows it; else the live teacher.

    Batches without sample positions (a student's own samples, mode on_policy) go to the live teacher.
    """
    c = exp.cfg.cache
    temperature = method_temperature(method)
    if c.mode == "off" or (temperature is None and c.mode == "auto"):
        return live
    misfits = [getattr(p, "name", type(p).__name__) for p in method_parts(method)
               if not getattr(p, "top_k_cache_fits", True)]
    if misfits and c.mode == "auto":
        exp.console.print(f"teacher: live for {', '.join(misfits)}: a top-k cache barely corrects the student's mass "
                          f"outside the teacher's top k, which this divergence weighs (docs/llm.md, "
                          f"'What top-k loses'); cache.mode: on uses the cache anyway", highlight=False)
        return live
    if temperature is None:
        raise ConfigError("cache.mode=on: the combined methods use different temperatures, and the top-k cache holds "
                          "one; give them one temperature or use cache.mode=auto")
    if inputs is None:
        inputs, targets = training_set(exp)
    vocab = head_size(live.model)
    options = TokenCacheOptions(k=min(c.top_k or LM_TOP_K, vocab), temperature=temperature, dtype=c.dtype,
                                memory_mb=c.memory_mb)
    directory = Path(c.dir) if c.dir else exp.run_dir / "cache"
    if role != "student":
        directory = directory / role
    if dist.is_main():
        directory.mkdir(parents=True, exist_ok=True)
    tokenizer = load_lm_tokenizer(exp.data.meta["lm"]["tokenizer"])
    key = token_cache_key(live.model, tokenizer, [inputs.cpu(), targets.cpu()], options)
    source = LMBatches(inputs, targets, train_cfg.batch_size, seed=exp.cfg.seed, buckets=True)
    cache = build_token_cache(live, source.epoch(0), loss_token_counts(targets), key, options, directory,
                              exp.device, log=exp.console.print)
    exp.token_cache = {"k": cache.k, "tokens": cache.tokens, "bytes": cache.nbytes,
                       "bytes_per_token": cache.bytes_per_token, "seconds": cache.build_seconds,
                       "temperature": temperature, "dir": str(directory)}
    return CachedTokenTeacher(cache, live)


def distil(exp: Experiment, role: str, model: nn.Module, train_cfg: TrainConfig, teacher: nn.Module, meta: dict,
           method: Method | None = None, use_transfer: bool = True) -> Stage:
    """Train ``model`` from the frozen ``teacher`` with the configured method (a fresh instance unless given).

    The teacher's outputs come from the cache when ``cache.mode`` allows it, and the data's transfer
    set (unlabelled, distillation only) joins the training set unless ``use_transfer`` is False.
    """
    method = method_from_config(exp.cfg.distill) if method is None else method
    needs = method.needs()
    prepare = input_preparer(teacher, exp.cfg.runtime.channels_last)
    live = LiveTeacher(freeze(teacher), needs.teacher_modules, prepare=prepare)
    try:
        transfer = exp.data.meta.get("transfer") if use_transfer else None
        teacher_fn = teacher_knowledge(exp, live, needs.teacher_modules, role, train_cfg,
                                       transfer, method) if needs.teacher else live
        views = getattr(teacher_fn, "views", None)
        trainer = make_trainer(exp, role, model, train_cfg, method, teacher=teacher_fn, meta=meta)
        return fit(exp, trainer, train_cfg, views, transfer)
    finally:
        live.close()
