"""`distill evaluate` on a causal-LM checkpoint: its run's LM data, the token metrics, optionally against the teacher.

The checks run before anything slow: a checkpoint of one kind (causal LM or not) with a config of
the other, or a data tokenizer that is not the one the model was trained with, is one line.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from distill.checkpoint import load_weights_into
from distill.config.schema import ModelConfig
from distill.data.bundle import DataBundle, Split
from distill.errors import ConfigError
from distill.evaluate.lm_metrics import lm_metrics, memory
from distill.models.causal_lm import head_size, is_causal_lm
from distill.models.registry import build_model, model_options

LM_TASK = "causal_lm"
LM_MODEL = "causal_lm"  # the registered model a causal_lm run trains; own LMs are recognised once built
TEACHER_METRICS = ("perplexity", "cross_entropy", "accuracy")
LM_DATA = "--config with the config.yaml of the causal_lm run it was trained in (or the experiment YAML it ran)"


def checked_task(path: Path, spec: dict, cfg: dict, source: str, against_teacher: bool) -> str:
    """The config's task, once the checkpoint is known to be a model of that kind (a causal LM for causal_lm)."""
    task = cfg.get("task") or "classification"
    if spec["name"] == LM_MODEL and task != LM_TASK:
        dataset = (cfg.get("data") or {}).get("dataset", "fashion_mnist")
        raise ConfigError(f"{path} is a causal language model but {source} describes a {task} run (data "
                          f"{dataset}); pass {LM_DATA}")
    if against_teacher and task != LM_TASK:
        raise ConfigError(f"--against-teacher compares a causal-LM checkpoint with its run's pretrained teacher; "
                          f"{path} is evaluated as a {task} checkpoint ({source}); drop the flag")
    return task


def check_vocabulary(path: Path, spec: dict, data: DataBundle, source: str, head: int | None = None) -> None:
    """The data's tokenizer is the size the model was trained with and fits its head, else one line."""
    tokens, trained = data.num_classes, spec["num_classes"]
    if tokens == trained and (head is None or tokens <= head):
        return
    tokenizer = data.meta.get("lm", {}).get("tokenizer") or "the default teacher's"
    predicts = f" (its head predicts {head})" if head is not None else ""
    raise ConfigError(f"{path} was trained with a {trained}-token tokenizer{predicts} but the data from {source} is "
                      f"tokenized with {tokenizer}, {tokens} tokens; evaluate it with its run's tokenizer "
                      f"(teacher.model.path or data.lm.tokenizer in --config)")


def check_lm_model(path: Path, spec: dict, model: nn.Module, data: DataBundle, source: str) -> None:
    if not is_causal_lm(model):
        raise ConfigError(f"{path} holds a {spec['name']} model, not a causal language model, but {source} describes "
                          f"a causal_lm run; pass --config with the config.yaml of the run it was trained in")
    check_vocabulary(path, spec, data, source, head_size(model))


def config_teacher(cfg: dict, data: DataBundle) -> tuple[nn.Module, dict]:
    """The run's teacher as the run built it: ``teacher.model`` (pretrained), ``teacher.checkpoint`` if set."""
    teacher = cfg.get("teacher") or {}
    spec = ModelConfig.model_validate(teacher.get("model") or {"name": LM_MODEL})
    accepted = model_options(spec.name)
    context = {k: v for k, v in data.meta.get("model_context", {}).items() if k in accepted and k not in spec.options}
    options = {**context, **spec.options}
    model = build_model(spec.name, tuple(data.input_shape), options.pop("num_classes", data.num_classes), **options)
    if teacher.get("checkpoint"):
        load_weights_into(model, teacher["checkpoint"], "the config's teacher")
    if not is_causal_lm(model):
        raise ConfigError(f"the config's teacher ({spec.name}) is not a causal language model; "
                          f"use teacher.model: {{name: causal_lm}}")
    shown = {"name": spec.name, "options": spec.options}
    if teacher.get("checkpoint"):
        shown["checkpoint"] = teacher["checkpoint"]
    return model, shown


def lm_checkpoint_metrics(model: nn.Module, cfg: dict, data: DataBundle, part: Split, batch_size: int,
                          against_teacher: bool) -> dict:
    """perplexity, cross_entropy, accuracy (next-token top-1 against the reference), tokens, params, size_bytes;
    with ``against_teacher`` also kl_to_teacher and top1_agreement, and the teacher's own numbers under "teacher"."""
    models = {"model": model}
    shown = None
    if against_teacher:
        models["teacher"], shown = config_teacher(cfg, data)
    entries = lm_metrics(models, part.inputs, part.targets, "teacher" if against_teacher else None,
                         batch_size=min(batch_size, 64))
    result = {**entries["model"], **memory(model)}
    if against_teacher:
        result["teacher"] = {"model": shown, **{k: entries["teacher"][k] for k in TEACHER_METRICS}}
    return result
