"""The method contract: what a distillation method needs and the losses it returns.

A method is an ``nn.Module`` so that any trainable parts it owns (adapters, projection
heads) are picked up by the trainer's optimizer and checkpoint without extra wiring.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from distill.errors import ConfigError
from distill.options import OptionError, validate_options
from distill.registry import Registry
from distill.types import Batch, Needs, Outputs  # noqa: F401  (re-exported: the contract types)


class Method(nn.Module):
    """Subclass, set ``summary`` and ``paper``, implement ``needs`` and ``losses``.

    ``losses`` returns the distillation terms only. The supervised label term (cross-entropy, or
    MSE for regression) belongs to the trainer (``distill.train.label_loss``), which adds it once
    with weight ``label_weight``: the value of the method's official recipe unless the config sets
    ``distill.label_weight``. ``renamed_options`` maps options of older configs to their new name;
    a target of ``"label_weight"`` means the option was this method's own label-loss weight.
    """

    summary: str = ""
    paper: str = ""
    label_weight: float = 1.0
    # The label loss the trainer uses: None = the task's (cross-entropy, or MSE for regression), or "l1".
    label_loss: str | None = None
    label_smoothing: float = 0.0
    renamed_options: ClassVar[dict[str, str]] = {}

    def needs(self) -> Needs:
        return Needs()

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        """Called once with a probe batch's outputs before training (e.g. to size adapters)."""

    def setup_data(self, targets: Tensor | None) -> None:
        """Called once before training with the training set's targets (None when the batches do not hold them)."""

    def start_epoch(self, epoch: int) -> None:
        """Called by the trainer before each training epoch (0-based), e.g. for an epoch-based warm-up."""


METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str):
    """Class decorator: ``@register_method("my_kd")`` makes ``method: my_kd`` usable in configs."""

    def decorator(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name)(cls)

    return decorator


def method_options(cls: type[Method]) -> dict[str, Any]:
    """The constructor's keyword options and their defaults."""
    params = inspect.signature(cls.__init__).parameters
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {n: p.default for n, p in params.items() if n != "self" and p.kind not in skip}


def renamed_label_option(cls: type[Method], options: dict[str, Any]) -> str | None:
    """The key of ``options`` that older configs used for this method's label-loss weight, if given."""
    return next((old for old, new in cls.renamed_options.items() if new == "label_weight" and old in options), None)


def check_method_options(name: str, options: dict[str, Any] | None,
                         where: str | None = None) -> tuple[dict[str, Any], float | None]:
    """(the options validated against the method's signature, the label weight an older option gave).

    Options of older configs are read under their new name first (see ``renamed_options``).
    """
    cls = METHODS.get(name)
    options = dict(options or {})
    label_weight = None
    for old, new in cls.renamed_options.items():
        if old not in options:
            continue
        value = options.pop(old)
        if new == "label_weight":
            label_weight = validate_options("method", name, _label_weight, {"label_weight": value},
                                            where)["label_weight"]
        elif new in options:
            raise ConfigError(f"method '{name}': option '{old}' is now called '{new}'; give only '{new}'")
        else:
            options[new] = value
    return validate_options("method", name, cls, options, where), label_weight


def _label_weight(label_weight: Annotated[float, Field(ge=0)] = 1.0) -> None:
    """The declaration of an older config's label-weight option (kd's beta, hard_weight)."""


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """The registered method ``name`` built with ``options``; options of older configs are read under their new name.

    An older config's label-weight option (kd's ``beta``, the feature methods' ``hard_weight``) becomes the
    method's ``label_weight``, so ``distill: {method: kd, options: {beta: 0.1}}`` still means what it meant.
    """
    options, label_weight = check_method_options(name, options)
    try:
        method = METHODS.get(name)(**options)
    except ValueError as exc:  # a method's own check of its options: the user's to fix
        raise OptionError(f"method '{name}': {' '.join(str(exc).split())}") from None
    if label_weight is not None:
        method.label_weight = label_weight
    return method


def kl_with_temperature(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over the batch.

    The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al. 2015).
    """
    log_p_student = torch.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = torch.log_softmax(teacher_logits / temperature, dim=-1)
    kl = torch.nn.functional.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2
