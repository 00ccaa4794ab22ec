"""Model registry: a factory takes (input_shape, num_classes, **options) and returns an nn.Module.

Besides the registered names, a name with a family prefix (``torchvision:resnet18``, ``timm:NAME``,
``hf:DIR``, see distill/models/families.py) resolves to a factory made for it on demand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from distill.errors import ConfigError
from distill.options import OptionError, validate_options
from distill.registry import Registry, UnknownNameError

ModelFactory = Callable[..., nn.Module]


class ModelRegistry(Registry[ModelFactory]):
    """The registered models, plus the families' names (``PREFIX:NAME``), resolved when asked for."""

    def families(self) -> dict:
        from distill.models.families import FAMILIES

        return FAMILIES

    def get(self, name: str) -> ModelFactory:
        prefix, colon, rest = name.partition(":")
        if colon and name not in self._items:
            family = self.families().get(prefix)
            if family is None:
                raise UnknownNameError(f"unknown model '{name}': '{prefix}:' is not a model family; the families "
                                       f"are {self.family_forms()} (`distill models` lists them)")
            return family.factory(rest)
        try:
            return super().get(name)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{exc}; or a model of another library: {self.family_forms()} "
                                   f"(`distill models`)") from None

    def family_forms(self) -> str:
        return ", ".join(f"{p}:<{'directory' if p == 'hf' else 'name'}>" for p in self.families())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if ":" in name and name.partition(":")[0] in self.families():
            try:
                self.get(name)
            except (UnknownNameError, ConfigError):
                return False
            return True
        return super().__contains__(name)


MODELS = ModelRegistry("model")


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
    factory = MODELS.get(name)
    checked = validate_options("model", name, factory, options, where)
    if hasattr(factory, "check_options"):  # a library's model: its class's own keyword options
        factory.check_options(checked, where or f"model '{name}'")
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


def rebuild_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that rebuild a model whose weights a distill checkpoint holds: a library model's
    ``weights`` file is not read again (it may be gone, and the checkpoint replaces it anyway)."""
    if ":" in name and name.partition(":")[0] in MODELS.families():
        return {k: v for k, v in options.items() if k != "weights"}
    return dict(options)
