"""The small Python API.

    import distill
    summary = distill.run("examples/quick.yaml")                         # a whole experiment
    result = distill.distill_model(teacher, student, data, method="kd", temperature=4)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from torch import nn

from distill.config.load import format_validation_error, load_config
from distill.config.schema import CacheConfig, ExperimentConfig, TrainConfig
from distill.data.batches import BatchSource
from distill.data.bundle import DataBundle
from distill.data.stream import batch_source
from distill.errors import ConfigError
from distill.knowledge.cache import CachedTeacher, CacheOptions, build_cache, choose_teacher
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.methods.base import build_method
from distill.pipeline.experiment import resolve_device, run_experiment
from distill.train.trainer import EpochCallback, FitResult, Trainer, input_preparer


def run(config: str | Path | dict | ExperimentConfig, out: str | Path | None = None, resume: bool = False,
        overrides: list[str] | None = None, quiet: bool = True) -> dict:
    """Run a whole experiment (what `distill run` does) and return its summary."""
    if isinstance(config, ExperimentConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = load_config(data=config, overrides=overrides)
    else:
        cfg = load_config(config, overrides)
    return run_experiment(cfg, Path(out) if out else None, resume=resume, quiet=quiet)


def _cache_config(cache: CacheConfig | dict | str | bool | None) -> CacheConfig:
    """``cache=`` takes what the YAML ``cache:`` block does: a dict, "auto" / "on" / "off", or a CacheConfig."""
    if isinstance(cache, CacheConfig):
        return cache
    try:
        return CacheConfig.model_validate("off" if cache is None else cache)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "cache")) from None


def cache_teacher(teacher: nn.Module, data: DataBundle, *, cache: CacheConfig | dict | str | None = "on",
                  epochs: int = 1, seed: int = 0, device: str = "auto", modules: tuple[str, ...] = (),
                  channels_last: bool = True) -> CachedTeacher:
    """The frozen ``teacher``'s outputs on ``data.train``, computed once (``cache.views`` augmented views).

    Pass the result as ``teacher=`` to :func:`train_model` / :func:`distill_model` to distil several
    students from one cache; ``cache.dir`` keeps it on disk and reuses it while teacher and data match.
    ``epochs`` bounds the views stored (epoch e uses view e mod views); ``modules`` are hooked layers
    a feature method needs.
    """
    device_ = resolve_device(device)
    live = LiveTeacher(freeze(teacher.to(device_)), tuple(modules), input_preparer(teacher, channels_last))
    return _build(live, data, _cache_config(cache), epochs, seed, device_, tuple(modules))


def _build(live: LiveTeacher, data: DataBundle, options: CacheConfig, epochs: int, seed: int, device_,
           modules: tuple[str, ...]) -> CachedTeacher:
    return build_cache(live, data.train.inputs.to(device_), data.train.targets.to(device_), data.augment, seed,
                       epochs, CacheOptions(views=options.views, dtype=options.dtype, top_k=options.top_k,
                                            memory_mb=options.memory_mb),
                       Path(options.dir) if options.dir else None, device_, modules,
                       log=lambda _: None)


def _teacher_for(teacher: nn.Module | CachedTeacher, method_obj, data: DataBundle, cache: CacheConfig,
                 batches: BatchSource | None, train_cfg: TrainConfig, seed: int, device_, channels_last: bool):
    """The live teacher, or its cache when ``cache`` asks for one and the batches can address it."""
    modules = method_obj.needs().teacher_modules
    if isinstance(teacher, CachedTeacher):
        return teacher
    live = LiveTeacher(teacher, modules, input_preparer(teacher, channels_last))
    if cache.mode == "off" or (cache.mode == "auto" and batches is not None):
        return live  # a user's DataLoader carries no stored views to look the outputs up by
    if batches is not None:
        raise ConfigError("cache mode 'on' needs the in-memory batches (it looks outputs up by sample and view); "
                          "drop batches= or use cache='auto'")
    return choose_teacher(cache.mode, live, lambda: _build(live, data, cache, train_cfg.epochs, seed, device_,
                                                                 modules))


def checkpoint_description(model: nn.Module, data: DataBundle, model_spec: dict | None) -> dict:
    """What the checkpoints record about the model: always its class, shapes; the registered name when given."""
    meta = {"class": f"{type(model).__module__}.{type(model).__qualname__}",
            "input_shape": list(data.input_shape), "num_classes": data.num_classes}
    if model_spec:
        if "name" not in model_spec:
            raise ConfigError("model_spec needs the registered model 'name' (and optionally its 'options')")
        meta.update({"name": model_spec["name"], "options": dict(model_spec.get("options", {}))})
    return meta


def train_model(model: nn.Module, data: DataBundle, *, teacher: nn.Module | CachedTeacher | None = None,
                method: str = "supervised", method_options: dict[str, Any] | None = None,
                train: TrainConfig | dict | None = None, seed: int = 0, device: str = "auto",
                checkpoint_dir: str | Path | None = None, batches: BatchSource | None = None, resume: bool = False,
                channels_last: bool = True, name: str = "model", task: str = "classification",
                cache: CacheConfig | dict | str | None = None,
                callbacks: list[EpochCallback] | None = None, model_spec: dict | None = None,
                label_weight: float | None = None) -> FitResult:
    """Train any ``nn.Module`` on a DataBundle, alone or from a frozen teacher; best weights end up in ``model``.

    ``batches`` replaces the in-memory pipeline, e.g. ``LoaderBatches(DataLoader(...))`` for large data.
    ``task="regression"`` validates on MSE/MAE/R^2 and keeps the lowest-MSE epoch (use a regression method).
    ``label_weight`` weighs the trainer's label loss; None = the method's default (kd 0.1, dkd 1.0, ...).
    ``cache`` is the YAML ``cache:`` block ("auto", "on", {"mode": "on", "views": 4}, ...; default off):
    the frozen teacher's outputs computed once; ``teacher`` may also be a :func:`cache_teacher` result.
    ``callbacks`` are called as ``callback(trainer, record)`` after every epoch (record: the
    metrics.jsonl line). ``device``: "auto", "cpu", "cuda", ...
    ``model_spec`` (``{"name": "my_net", "options": {...}}``, a ``@register_model`` name) is written into
    the checkpoints, so that ``distill evaluate`` / ``bench`` / ``export`` can rebuild the model.
    """
    train_cfg = train if isinstance(train, TrainConfig) else TrainConfig(**(train or {}))
    cache_cfg = _cache_config(cache)
    device_ = resolve_device(device)
    teacher_fn = None
    method_obj = build_method(method, method_options)
    if method_obj.needs().teacher:
        if teacher is None:
            raise ValueError(f"method '{method}' needs a teacher")
        if not isinstance(teacher, CachedTeacher):
            teacher = freeze(teacher.to(device_))
        teacher_fn = _teacher_for(teacher, method_obj, data, cache_cfg, batches, train_cfg, seed, device_,
                                  channels_last)
    if batches is None:
        # images on disk (LazyInputs) are read by DataLoader workers, with the same order and views
        batches = batch_source(data.train.inputs.to(device_), data.train.targets.to(device_),
                               train_cfg.batch_size, device=device_, augment=data.augment, seed=seed,
                               views=getattr(teacher_fn, "views", None))
    trainer = Trainer(name, model, train_cfg, method_obj, teacher=teacher_fn, seed=seed, device=device_,
                      checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, channels_last=channels_last,
                      task=task, callbacks=callbacks, model_meta=checkpoint_description(model, data, model_spec),
                      label_weight=label_weight)
    try:
        return trainer.fit(batches, data.val.inputs, data.val.targets, resume=resume)
    finally:
        if teacher_fn is not None and not isinstance(teacher, CachedTeacher):
            teacher_fn.close()  # a cache the caller built is theirs to close


def distill_model(teacher: nn.Module | CachedTeacher, student: nn.Module, data: DataBundle, method: str = "kd",
                  train: TrainConfig | dict | None = None, seed: int = 0, label_weight: float | None = None, *,
                  cache: CacheConfig | dict | str | None = None, callbacks: list[EpochCallback] | None = None,
                  batches: BatchSource | None = None, device: str = "auto", checkpoint_dir: str | Path | None = None,
                  **method_options: Any) -> FitResult:
    """Distill ``teacher`` (frozen, or a :func:`cache_teacher` cache) into ``student`` with a registered method.

    ``label_weight``, ``cache``, ``callbacks``, ``batches``, ``device`` and ``checkpoint_dir`` are as in
    :func:`train_model`; every other keyword is an option of the method (``temperature=4``).
    """
    return train_model(student, data, teacher=teacher, method=method, method_options=method_options,
                       train=train, seed=seed, name="student", label_weight=label_weight, cache=cache,
                       callbacks=callbacks, batches=batches, device=device, checkpoint_dir=checkpoint_dir)
