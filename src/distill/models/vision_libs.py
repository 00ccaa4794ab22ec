"""torchvision and timm classifiers by name: ``model: {name: "torchvision:resnet18", weights: r18.pth}``.

The data sets the classes (``num_classes``) and the input channels: timm builds the first layer
for them (``in_chans``); for torchvision the first convolution is replaced when the data is not
RGB (1-channel Fashion-MNIST). ``weights`` loads a local file, the head replaced when its classes
differ and an RGB first convolution adapted to the data's channels (distill/models/weights.py).
Other options go to the library's model class (torchvision's ``zero_init_residual``, timm's
``drop_rate``), checked on the meta device before any data is loaded.

Module paths are the library's own, so feature methods reach ``layer3`` of a torchvision ResNet
or ``stages.2`` of a timm ConvNeXt; ``distill models torchvision`` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from torch import nn

from distill.models.families import (
    VISION_EXTRA,
    Family,
    check_on_meta,
    image_channels,
    refuse_downloads,
    register_family,
    unknown_name,
)
from distill.models.weights import head_paths, load_into, replace_first_conv

# Classifiers whose training-mode output is a tuple (main, auxiliary logits) unless told otherwise.
AUXILIARY = ("googlenet", "inception_v3")


@cache
def torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))  # the image classifiers (not detection, segmentation, video)


def _torchvision_resolve(name: str) -> None:
    if name not in torchvision_names():
        raise unknown_name("torchvision", name, torchvision_names())


def _torchvision_model(name: str, num_classes: int, options: dict) -> nn.Module:
    import torchvision.models as tvm

    options = dict(options)
    if name in AUXILIARY:
        options.setdefault("aux_logits", False)
        options.setdefault("init_weights", True)
    return tvm.get_model(name, weights=None, num_classes=num_classes, **options)  # weights=None: never a download


def build_torchvision(name: str, input_shape: tuple[int, ...], num_classes: int, weights: str | None,
                      options: dict[str, Any]) -> nn.Module:
    label = f"model 'torchvision:{name}'"
    channels = image_channels(input_shape, label)
    refuse_downloads(options, label)
    model = _torchvision_model(name, num_classes, options)
    first_conv = replace_first_conv(model, channels)
    if weights:
        load_into(model, weights, label, num_classes, head_paths(model, num_classes), first_conv)
    return model


def model_builder(prefix: str, name: str, num_classes: int = 10) -> Callable[[dict], nn.Module]:
    """options -> the library's RGB model: what the option checks build on the meta device."""
    if prefix == "torchvision":
        return lambda options: _torchvision_model(name, num_classes, options)
    return lambda options: _timm_model(name, num_classes, 3, None, options)


def _checker(prefix: str) -> Callable[[str, dict, str], None]:
    def check(name: str, options: dict, label: str) -> None:
        library = {k: v for k, v in options.items() if k not in ("weights", "num_classes")}
        check_on_meta(model_builder(prefix, name, options.get("num_classes", 10)), library, label, prefix, name)

    return check


@cache
def timm_names() -> list[str]:
    import timm

    return sorted(timm.list_models())


def _timm_resolve(name: str) -> None:
    if name not in timm_names():
        raise unknown_name("timm", name, timm_names(), "distill models 'timm:*pattern*'")


def _timm_model(name: str, num_classes: int, channels: int, image_size: tuple[int, int] | None,
                options: dict) -> nn.Module:
    import timm

    options = dict(options)
    if image_size is not None and "img_size" not in options:
        # Vision transformers fix their input size when built; a model without that option refuses it.
        try:
            return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=channels,
                                     img_size=image_size, **options)
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=channels, **options)


def build_timm(name: str, input_shape: tuple[int, ...], num_classes: int, weights: str | None,
               options: dict[str, Any]) -> nn.Module:
    label = f"model 'timm:{name}'"
    channels = image_channels(input_shape, label)
    refuse_downloads(options, label)
    model = _timm_model(name, num_classes, channels, tuple(input_shape[1:]), options)
    if weights:
        cfg = getattr(model, "pretrained_cfg", None) or {}
        load_into(model, weights, label, num_classes, head_paths(model, num_classes, cfg.get("classifier")),
                  cfg.get("first_conv"))
    return model


register_family(Family(
    prefix="torchvision", module="torchvision", install=VISION_EXTRA,
    summary="a torchvision image classifier", names=torchvision_names, build=build_torchvision,
    check=_checker("torchvision"), resolve=_torchvision_resolve))
register_family(Family(
    prefix="timm", module="timm", install=VISION_EXTRA,
    summary="a timm image classifier", names=timm_names, build=build_timm, check=_checker("timm"),
    resolve=_timm_resolve))
