"""Checks that run before anything is built, trained or written: each failure is one line.

* ``check_config``: every model's and method's options against its factory's declaration
  (distill/options.py), the device and the precision, and which task each method serves;
* ``check_data``: the data against the task (classes for classification, float targets for
  regression), once it is loaded and before any model sees it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from distill.config.schema import ExperimentConfig
from distill.data.lazy import is_lazy
from distill.errors import CompatibilityError, ConfigError, DataError
from distill.methods.base import METHODS, check_method_options
from distill.models.registry import check_model_options
from distill.rundir import check_writable_folder

REGRESSION = "regression"
CLASSIFICATION = "classification"
CAUSAL_LM = "causal_lm"
LM_MODES = ("offline", "sequence_kd", "on_policy")  # pipeline/modes/ files that run causal_lm


def model_sections(cfg: ExperimentConfig) -> list[tuple[str, object]]:
    """(config key, ModelConfig) of every model the config describes."""
    sections = [("teacher.model", cfg.teacher.model), ("student.model", cfg.student.model)]
    if cfg.distill.assistant is not None:
        sections.append(("distill.assistant.model", cfg.distill.assistant.model))
    sections += [(f"distill.peers[{i}]", peer) for i, peer in enumerate(cfg.distill.peers)]
    return sections


def method_sections(cfg: ExperimentConfig) -> list[tuple[str, str, dict]]:
    """(config key, method name, options) of every method the config uses."""
    if cfg.distill.methods:
        return [(f"distill.methods[{i}].options", m.method, m.options) for i, m in enumerate(cfg.distill.methods)]
    return [("distill.options", cfg.distill.method, cfg.distill.options)]


def method_tasks(name: str) -> tuple[str, ...]:
    """The tasks a method serves: its ``tasks`` attribute, else regression for distill.methods.regression's."""
    cls = METHODS.get(name)
    declared = getattr(cls, "tasks", None)
    if declared:
        return tuple(declared)
    return (REGRESSION,) if cls.__module__.endswith(".regression") else (CLASSIFICATION,)


def check_device(cfg: ExperimentConfig) -> None:
    name, precision = cfg.runtime.device, cfg.runtime.precision
    kind, _, index = name.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"runtime.device: '{name}' but this machine has no CUDA device that torch can use "
                              f"(torch.cuda.is_available() is false); use device: auto or cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"runtime.device: '{name}' but this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s), numbered from 0")
    elif kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("runtime.device: 'mps' but Apple's Metal backend is not available here; use auto or cpu")
    elif kind == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise ConfigError(f"runtime.device: '{name}' but no Intel XPU is available here; use auto or cpu")
    on_cuda = kind == "cuda" or (kind == "auto" and torch.cuda.is_available())
    if precision == "fp16" and not on_cuda:
        raise ConfigError("runtime.precision: fp16 needs a CUDA device; use bf16 (or fp32) on this machine")


FSDP_MODES = ("offline", "sequence_kd")  # a frozen teacher; the student trains alone in one Trainer


def check_parallel(cfg: ExperimentConfig, source: str = "config") -> None:
    """runtime.parallel: fsdp fits the mode, the method and the fast paths (train/fsdp.py)."""
    if cfg.runtime.parallel != "fsdp":
        return
    if cfg.distill.mode not in FSDP_MODES:
        why = (" (the student samples responses while it trains, which a sharded student cannot do alone)"
               if cfg.distill.mode == "on_policy" else "")
        raise ConfigError(f"{source}: runtime.parallel: fsdp runs the modes {', '.join(FSDP_MODES)}, not "
                          f"'{cfg.distill.mode}'{why}; use runtime.parallel: ddp")
    if cfg.runtime.compile:
        raise ConfigError(f"{source}: runtime.compile is not supported with runtime.parallel: fsdp; "
                          f"set compile: false or parallel: ddp")
    for _, name, _ in method_sections(cfg):
        reason = getattr(METHODS.get(name), "fsdp_unsupported", None)
        if reason:
            raise ConfigError(f"{source}: runtime.parallel: fsdp cannot train method '{name}': it {reason}; "
                              f"use runtime.parallel: ddp")


def check_config(cfg: ExperimentConfig, source: str = "config") -> None:
    """Options, device and method/task fit, checked from the config alone (no data, nothing built)."""
    for key, spec in model_sections(cfg):
        check_model_options(spec.name, spec.options, f"{source}: {key}")
    for key, name, options in method_sections(cfg):
        check_method_options(name, options, f"{source}: {key}")
        if cfg.task not in method_tasks(name):
            serves = " and ".join(method_tasks(name))
            raise CompatibilityError(f"{source}: method '{name}' is for {serves} but task is '{cfg.task}'; "
                                     f"see `distill methods` for the {cfg.task} methods")
    from distill.data.registry import dataset_spec
    from distill.data.unlabeled import check_unlabeled_source

    spec = dataset_spec(cfg.data.dataset)
    task = spec.task_for(cfg.data)
    if task != cfg.task:
        raise CompatibilityError(f"{source}: task is '{cfg.task}' but dataset '{spec.name}' is a {task} "
                                 f"dataset; set task: {task}, or choose a {cfg.task} dataset")
    check_unlabeled_source(cfg.data, spec)
    if cfg.task == CAUSAL_LM and cfg.distill.mode not in LM_MODES:
        raise CompatibilityError(f"{source}: distill.mode '{cfg.distill.mode}' does not train language models; "
                                 f"task causal_lm runs the modes {', '.join(LM_MODES)}")
    check_device(cfg)
    check_parallel(cfg, source)
    if cfg.cache.dir and cfg.cache.mode != "off":  # else found only once the teacher has trained
        check_writable_folder(Path(cfg.cache.dir), "cache.dir")


def check_data(cfg: ExperimentConfig, data) -> None:
    """The loaded data fits the task: float targets for regression; two or more classes and labels for
    classification (unlabelled transfer-set rows have label -1 and are not in these splits)."""
    targets = data.train.targets
    if cfg.task == REGRESSION and not targets.is_floating_point():
        raise CompatibilityError(f"task: regression but {data.name} has class labels ({data.num_classes} classes); "
                                 f"use task: classification, or a regression dataset (diabetes)")
    if cfg.task == CLASSIFICATION:
        if targets.is_floating_point():
            raise CompatibilityError(f"task: classification but {data.name} has real-valued targets; "
                                     f"use task: regression")
        if data.num_classes < 2 or len(torch.unique(targets[targets >= 0])) < 2:
            raise DataError(f"{data.name}: every training label is the same, so there is nothing to classify; "
                            f"check the data's label column (data.text.label_column) or the files")
    if cfg.data.stream and not is_lazy(data.train.inputs):
        raise ConfigError(f"data.stream: true, but {data.name} is loaded into memory as one tensor; streaming "
                          f"needs a dataset read from files (image_folder, audio_folder, or an hf_dataset of images); "
                          f"remove data.stream")
    for name, part in (("train", data.train), ("val", data.val), ("test", data.test)):
        if len(part) == 0:
            raise DataError(f"{data.name}: the {name} split is empty; give more data or a smaller data.val_size")
