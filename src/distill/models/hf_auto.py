"""A local Hugging Face classifier directory by name: ``model: {name: "hf:models/my-vit"}``.

The directory's ``config.json`` chooses the class: AutoModelForImageClassification,
...SequenceClassification or ...AudioClassification, from its ``architectures`` or its model
type, else from the data (images, token ids, audio); ``task: image|text|audio`` says it outright.
With weights in the directory they are loaded (a head for other classes is replaced, one info
line); without, the model starts from its config, sized for the data (channels, image size).
``weights: FILE`` loads a further local file into it. Other options set config fields
(``hidden_dropout_prob: 0.2``). Nothing is downloaded.

The HF model is the wrapper's ``model``: hook paths read ``model.vit.layers.5`` (transformers 5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from distill.errors import ConfigError
from distill.models import vision_libs  # noqa: F401  (torchvision: and timm: are listed before hf:)
from distill.models.families import Family, register_family
from distill.models.hf import _transformers
from distill.models.weights import head_paths, load_into
from distill.options import OptionError
from distill.registry import nearest
from distill.terminal import info

TASKS = {"image": ("ImageClassification", "IMAGE"), "text": ("SequenceClassification", "SEQUENCE"),
         "audio": ("AudioClassification", "AUDIO")}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
OWN_OPTIONS = ("task",)


def model_dir(path: str) -> Path:
    directory = Path(path).expanduser()
    if not (directory / "config.json").is_file():
        raise ConfigError(f"model 'hf:{path}': {directory} is not a Hugging Face model directory (no config.json); "
                          f"hf: takes a local directory (save_pretrained), nothing is downloaded")
    return directory


def _resolve(path: str) -> None:
    model_dir(path)


def choose_task(config, input_shape: tuple[int, ...] | None, given: str | None, label: str) -> str:
    if given is not None:
        if given not in TASKS:
            raise OptionError(f"{label}: 'task' is '{given}'; expected one of {', '.join(TASKS)}")
        return given
    for task, (suffix, _) in TASKS.items():
        if any(a.endswith(f"For{suffix}") for a in (config.architectures or [])):
            return task
    from transformers.models.auto import modeling_auto

    fits = [task for task, (_, key) in TASKS.items()
            if config.model_type in getattr(modeling_auto, f"MODEL_FOR_{key}_CLASSIFICATION_MAPPING_NAMES")]
    if len(fits) == 1:
        return fits[0]
    by_shape = {3: "image", 2: "audio", 1: "text"}.get(len(input_shape or ()))
    if by_shape in fits or (not fits and by_shape):
        return by_shape
    raise OptionError(f"{label}: cannot tell whether {config.model_type} is an image, text or audio classifier "
                      f"here; set task: image, text or audio")


def _config_overrides(config, options: dict, label: str) -> dict:
    overrides = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
    fields = list(config.to_dict())
    for key in overrides:
        if not hasattr(config, key):
            raise OptionError(f"{label}: {config.model_type} config has no field '{key}'{nearest(key, fields)}; "
                              f"hf: options set fields of its config.json (or task: image|text|audio)")
    return overrides


class HFAutoClassifier(nn.Module):
    """Logits from a Hugging Face classifier: the data's tensor goes in as its main input."""

    def __init__(self, model: nn.Module, task: str, repeat_channels: int = 1):
        super().__init__()
        self.model = model
        self.task = task
        self.input_name = getattr(model, "main_input_name", "pixel_values")
        self.pad_id = getattr(model.config, "pad_token_id", None) or 0
        self.repeat_channels = repeat_channels  # 1-channel data into an RGB checkpoint: the same image thrice

    def forward(self, x: Tensor) -> Tensor:
        extra = {}
        if self.task == "text":
            extra["attention_mask"] = (x != self.pad_id).long()
        elif self.task == "image" and self.repeat_channels > 1:
            x = x.expand(-1, self.repeat_channels, *x.shape[2:])
        return self.model(**{self.input_name: x}, **extra).logits


def build_hf(path: str, input_shape: tuple[int, ...], num_classes: int, weights: str | None,
             options: dict[str, Any]) -> nn.Module:
    tf = _transformers()
    label = f"model 'hf:{path}'"
    directory = model_dir(path)
    config = tf.AutoConfig.from_pretrained(str(directory))
    trained_classes = config.num_labels
    task = choose_task(config, input_shape, options.get("task"), label)
    overrides = _config_overrides(config, options, label)
    auto = getattr(tf, f"AutoModelFor{TASKS[task][0]}")
    pretrained = any((directory / f).is_file() for f in WEIGHT_FILES)
    repeat = 1
    if task == "image" and len(input_shape) == 3:
        channels, size = input_shape[0], input_shape[1]
        if pretrained and getattr(config, "num_channels", channels) != channels and channels == 1:
            repeat = config.num_channels
        elif not pretrained:
            overrides.update({k: v for k, v in (("num_channels", channels), ("image_size", size))
                              if hasattr(config, k)})
    for key, value in {**overrides, "num_labels": num_classes}.items():
        setattr(config, key, value)
    if pretrained:
        model = auto.from_pretrained(str(directory), config=config, ignore_mismatched_sizes=True)
        if trained_classes != num_classes:
            info(f"{label}: its head was trained for {trained_classes} classes, the data has {num_classes}; "
                 f"it is replaced by a new one, trained from scratch")
    else:
        model = auto.from_config(config)
    if weights:
        load_into(model, weights, label, num_classes, head_paths(model, num_classes))
    return HFAutoClassifier(model, task, repeat)


def _check(path: str, options: dict, label: str) -> None:
    config = _transformers().AutoConfig.from_pretrained(str(model_dir(path)))
    if options.get("task") is not None:
        choose_task(config, None, options["task"], label)
    _config_overrides(config, {k: v for k, v in options.items() if k not in ("weights", "num_classes")}, label)


def _no_listing() -> list[str]:
    return []  # a directory of one's own: there is nothing to list


register_family(Family(
    prefix="hf", module="transformers", install="pip install -e '.[text]' (make setup installs it)",
    summary="a local Hugging Face classifier directory (AutoModelFor{Image,Sequence,Audio}Classification)",
    names=_no_listing, build=build_hf, check=_check, resolve=_resolve))
