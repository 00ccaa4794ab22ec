"""Model registry: a factory takes (input_shape, num_classes, **options) and returns an nn.Module."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from distill.errors import ConfigError
from distill.options import OptionError, validate_options
from distill.registry import Registry

ModelFactory = Callable[..., nn.Module]
MODELS: Registry[ModelFactory] = Registry("model")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """``@register_model("my_net")`` on ``def f(input_shape, num_classes, **options)``."""
    return MODELS.register(name)


def model_options(name: str) -> dict[str, Any]:
    params = inspect.signature(MODELS.get(name)).parameters
    return {
        n: p.default
        for n, p in params.items()
        if n not in ("input_shape", "num_classes") and p.kind is not p.VAR_KEYWORD
    }


def check_model_options(name: str, options: dict[str, Any], where: str | None = None) -> dict[str, Any]:
    """The options validated against the factory's signature (see distill/options.py); one-line errors.

    ``num_classes`` may be given too (a config overriding the data's class count): a positive integer.
    """
    options = dict(options)
    classes = options.pop("num_classes", None)
    checked = validate_options("model", name, MODELS.get(name), options, where)
    if classes is not None:
        if not isinstance(classes, int) or isinstance(classes, bool) or not 1 <= classes <= 1 << 20:
            raise ConfigError(f"{where or f'model {name!r}'}: 'num_classes': expected a positive integer, "
                              f"got {classes!r}")
        checked["num_classes"] = classes
    return checked


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> nn.Module:
    factory = MODELS.get(name)
    options = check_model_options(name, options)
    try:
        return factory(input_shape=tuple(input_shape), num_classes=num_classes, **options)
    except ValueError as exc:  # a factory's own check of its options: the user's to fix
        raise OptionError(f"model '{name}': {' '.join(str(exc).split())}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
