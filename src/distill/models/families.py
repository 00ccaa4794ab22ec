"""Families of model names resolved on demand: ``torchvision:resnet18``, ``timm:convnext_nano``, ``hf:DIR``.

A family turns the part after its prefix into a factory of the registry's shape,
``(input_shape, num_classes, weights=None, **options)``, so such a model is configured, checked,
built, checkpointed and rebuilt like a zoo model. The library behind a family is imported only
when one of its names is used; a missing library is a one-line error saying how to install it.
Nothing is ever downloaded: ``weights`` is a local file (distill/models/weights.py).
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.errors import CheckpointError, CompatibilityError, ConfigError
from distill.options import OptionError
from distill.registry import UnknownNameError

VISION_EXTRA = "pip install -e '.[vision]' (make setup installs it)"
DOWNLOAD_OPTIONS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "progress")


@dataclass(frozen=True)
class Family:
    """One library's models. ``build(name, input_shape, num_classes, weights, options)`` makes one;
    ``check(name, options, label)`` checks a config's options before any data is loaded."""

    prefix: str
    module: str  # the import name of the library
    install: str  # how to install it
    summary: str
    names: Callable[[], list[str]]
    build: Callable[..., nn.Module]
    check: Callable[[str, dict, str], None]
    resolve: Callable[[str], None]  # refuses an unknown name (close matches, how to list them)

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def require(self) -> None:
        if not self.installed():
            raise ConfigError(f"'{self.prefix}:' models need {self.module}, which is not installed: {self.install}")

    def factory(self, rest: str) -> Callable[..., nn.Module]:
        self.require()
        if not rest:
            raise UnknownNameError(f"model '{self.prefix}:' names no model; write {self.prefix}:<name> "
                                   f"(`distill models {self.prefix}` lists them)")
        self.resolve(rest)
        return _factory(self, rest)


@lru_cache(maxsize=256)  # one factory object per name: the options' pydantic model is cached per factory
def _factory(family: Family, rest: str) -> Callable[..., nn.Module]:
    def factory(input_shape: tuple[int, ...], num_classes: int, weights: str | None = None,
                **options: Any) -> nn.Module:
        return family.build(rest, tuple(input_shape), num_classes, weights, options)

    factory.__name__ = re.sub(r"\W", "_", f"{family.prefix}_{rest}")
    factory.__doc__ = (f"{family.summary} ({family.prefix}:{rest}); weights: a local .safetensors/.pt file "
                       f"(the head is replaced when its classes differ); other options go to the library")
    def check_options(options: dict, label: str) -> None:
        weights = options.get("weights")
        if weights and not Path(weights).expanduser().is_file():  # said before any data is loaded
            raise CheckpointError(f"{label}: weights file not found: {weights} (distill never downloads weights; "
                                  f"give a local .safetensors, .pt or .pth file)")
        family.check(rest, options, label)

    factory.check_options = check_options
    return factory


def unknown_name(family: str, name: str, names: list[str], listing: str | None = None) -> UnknownNameError:
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    hint = f" (close: {', '.join(close)})" if close else ""
    return UnknownNameError(f"unknown {family} model '{name}'{hint}; `{listing or f'distill models {family}'}` "
                            f"lists its {len(names)} names")


def image_channels(input_shape: tuple[int, ...], label: str) -> int:
    if len(input_shape) != 3:
        raise CompatibilityError(f"{label} takes images (channels, height, width) but the data gives inputs of "
                                 f"shape {input_shape}; use an image dataset")
    return input_shape[0]


def refuse_downloads(options: dict, label: str) -> None:
    for key in DOWNLOAD_OPTIONS:
        if options.get(key) not in (None, False):
            raise OptionError(f"{label}: '{key}' would download weights, which distill never does; download "
                              f"them yourself and give the file as weights: <file.safetensors|.pth>")


def check_on_meta(build: Callable[[dict], nn.Module], options: dict, label: str, family: str, name: str) -> None:
    """Build the model on the meta device (no memory, milliseconds) to check its options now, before
    any data is loaded: an option its class does not take is a one-line error listing those it does."""
    refuse_downloads(options, label)
    try:
        with torch.device("meta"):
            build(options)
    except TypeError as exc:
        message = str(exc)
        bad = re.search(r"unexpected keyword argument '(\w+)'", message)
        if not bad:
            raise OptionError(f"{label}: {family} model '{name}': {message.splitlines()[0][:200]}") from None
        known = class_options(build)
        from distill.registry import nearest

        raise OptionError(f"{label}: {family} model '{name}' has no option '{bad.group(1)}'"
                          f"{nearest(bad.group(1), known)}; its options are: weights, {', '.join(known)}") from None
    except ValueError as exc:
        raise OptionError(f"{label}: {family} model '{name}': {str(exc).splitlines()[0][:200]}") from None
    except Exception:  # noqa: BLE001  a model that cannot be made on the meta device is checked when it is built
        return


def class_options(build: Callable[[dict], nn.Module]) -> list[str]:
    """The keyword options of the class the library builds (read from a meta-device instance)."""
    import inspect

    try:
        with torch.device("meta"):
            cls = type(build({}))
        params = inspect.signature(cls.__init__).parameters
    except Exception:  # noqa: BLE001  the listing is a hint only
        return []
    return [n for n, p in params.items() if n not in ("self", "num_classes", "in_chans")
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.prefix] = family
    return family
