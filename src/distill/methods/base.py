"""The method contract: what a distillation method needs and the losses it returns.

A method is an ``nn.Module`` so that any trainable parts it owns (adapters, projection
heads) are picked up by the trainer's optimizer and checkpoint without extra wiring.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from distill.options import OptionError, validate_options
from distill.registry import Registry


@dataclass(frozen=True)
class Needs:
    """What the trainer must collect for a method.

    ``student_modules``/``teacher_modules`` are dotted module paths (``layer2``,
    ``encoder.layer.3``) whose outputs are captured with forward hooks.
    ``teacher`` is False for methods that learn from labels alone.
    """

    teacher: bool = True
    student_modules: tuple[str, ...] = ()
    teacher_modules: tuple[str, ...] = ()


@dataclass
class Outputs:
    logits: Tensor
    features: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    inputs: Tensor
    targets: Tensor
    # Position of each sample in its dataset; lets a teacher cache look up stored outputs.
    index: Tensor | None = None
    # The augmentation draws that produced ``inputs`` (None when not augmented).
    view: Any = None


class Method(nn.Module):
    """Subclass, set ``summary`` and ``paper``, implement ``needs`` and ``losses``."""

    summary: str = ""
    paper: str = ""

    def needs(self) -> Needs:
        return Needs()

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        """Called once with a probe batch's outputs before training (e.g. to size adapters)."""


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


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    cls = METHODS.get(name)
    options = dict(options or {})
    options = validate_options("method", name, cls, options)
    try:
        return cls(**options)
    except ValueError as exc:  # a method's own check of its options: the user's to fix
        raise OptionError(f"method '{name}': {' '.join(str(exc).split())}") from None


def kl_with_temperature(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL(softmax(t/T) || softmax(s/T)) * T^2, averaged over the batch.

    The T^2 factor keeps the soft term's gradient scale independent of T (Hinton et al. 2015).
    """
    log_p_student = torch.log_softmax(student_logits / temperature, dim=-1)
    log_p_teacher = torch.log_softmax(teacher_logits / temperature, dim=-1)
    kl = torch.nn.functional.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2
